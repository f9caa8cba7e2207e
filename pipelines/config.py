"""The resolved options as typed config: one sub-config per stage group, and `resolve`.

Which option lands in which field is OPTIONS' `group` column (pipelines.options); a test checks
that every field here has exactly one option there.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hierdata.errors import InputError
from pipelines.options import (
    CROPS,
    CROSS_IMAGE,
    EXECUTION,
    INPUTS,
    MINING,
    OPTIONS,
    RUN,
    SHARDING,
    HierOpenImagesOptions,
)


@dataclass(frozen=True)
class Inputs:
    """What the run reads: roots and files, resolved against --input."""

    input: str
    images: str  # template with {input}, {split}, {image_id}
    splits: tuple[str, ...]
    class_descriptions: str
    hierarchy: str | None
    max_image_bytes: int  # an image file larger than this is a reject, never read
    image_timeout: float  # seconds per remote image read
    s3_anonymous: bool  # s3:// read unsigned (image_files.use_anonymous_s3)
    image_ids: str | None  # the --image_ids subset file, or None for every image


@dataclass(frozen=True)
class MiningRules:
    """DESIGN "Rules": pair mining and the label-pair statistics that accept pairs."""

    stats_splits: tuple[str, ...]
    containment: float
    min_box_area: float
    duplicate_iou: float
    min_pair_frequency: int
    min_pair_proportion: float
    same_object_iou: float
    isa_guard: bool  # resolved: on exactly when a hierarchy is read and not --isa_guard off


@dataclass(frozen=True)
class CrossImageSampling:
    cross_image_samples: int
    cross_image_pool: int
    seed: int


@dataclass(frozen=True)
class Crops:
    crop_size: int
    jpeg_quality: int


@dataclass(frozen=True)
class Sharding:
    samples_per_shard: int


@dataclass(frozen=True)
class Execution:
    """How the work is cut up and run; no output depends on it."""

    chunk_bytes: int
    bucket_bytes: int
    local_workers: int


GROUPS: dict[str, type] = {
    INPUTS: Inputs,
    MINING: MiningRules,
    CROSS_IMAGE: CrossImageSampling,
    CROPS: Crops,
    SHARDING: Sharding,
    EXECUTION: Execution,
}


@dataclass(frozen=True)
class RunConfig:
    """The resolved options: plain frozen data, so it pickles to Dataflow workers."""

    output: str
    skip_images: bool
    max_reject_fraction: float
    max_image_reject_fraction: float
    inputs: Inputs
    mining: MiningRules
    cross_image: CrossImageSampling
    crops: Crops
    sharding: Sharding
    execution: Execution

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "RunConfig":
        """Sort resolved values ({Option.field: value}) into the sub-configs of their groups."""
        grouped: dict[str, dict[str, Any]] = {group: {} for group in (RUN, *GROUPS)}
        for option in OPTIONS:
            grouped[option.group][option.field] = values[option.field]
        parts = {group: GROUPS[group](**grouped[group]) for group in GROUPS}
        return cls(**grouped[RUN], **parts)

    def as_dict(self) -> dict[str, Any]:
        """run.json "options": every resolved value by its field name, in OPTIONS order."""
        return {
            option.field: getattr(
                self if option.group == RUN else getattr(self, option.group), option.field
            )
            for option in OPTIONS
        }


def _comma_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


def _bytes(mib: float) -> int:
    return max(1, int(mib * (1 << 20)))


def resolve(
    opts: HierOpenImagesOptions,
    found_splits: Sequence[str],
    input_root: str,
    class_descriptions: str,
    hierarchy: str | None,
) -> RunConfig:
    """Fill the defaults that depend on the input (values already passed check_values).

    Args:
        opts: the parsed options.
        found_splits: the splits with a bbox file in the input.
        input_root, class_descriptions, hierarchy: as found (or given) for this input.
    Raises:
        InputError: splits that the input lacks, or --isa_guard on without a hierarchy.
    """
    found_splits = tuple(found_splits)
    splits = _comma_list(opts.splits) or found_splits
    missing = [s for s in splits if s not in found_splits]
    if missing:
        raise InputError(
            f"--splits names {', '.join(missing)} but {input_root} has bbox files only for "
            f"{', '.join(found_splits) or 'no split'}"
        )
    if opts.isa_guard == "on" and not hierarchy:
        raise InputError(
            "--isa_guard on needs a hierarchy JSON (--hierarchy or "
            "bbox_labels_600_hierarchy.json in --input)"
        )
    stats_splits = _comma_list(opts.stats_split) or (("train",) if "train" in splits else splits)
    outside = [s for s in stats_splits if s not in splits]
    if outside:
        raise InputError(
            f"--stats_split {', '.join(outside)} is not among the processed splits "
            f"({', '.join(splits)})"
        )
    values = {option.field: getattr(opts, option.name) for option in OPTIONS}
    values.update(
        input=input_root,
        splits=splits,
        stats_splits=stats_splits,
        class_descriptions=class_descriptions,
        hierarchy=hierarchy,
        isa_guard=bool(hierarchy) and opts.isa_guard != "off",
        chunk_bytes=_bytes(opts.chunk_mib),
        max_image_bytes=_bytes(opts.max_image_mib),
        bucket_bytes=_bytes(opts.bucket_mib),
    )
    return RunConfig.from_values(values)
