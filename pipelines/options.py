"""The pipeline's options: a Beam PipelineOptions subclass, so `--help` lists them with Beam's.

Defaults are DESIGN.md's; `resolve` turns them into one frozen `MiningConfig` for the stages.
"""

from dataclasses import asdict, dataclass

from apache_beam.options.pipeline_options import PipelineOptions

from hierdata.errors import InputError

DEFAULT_OUTPUT = "./hier_openimages_out"
DEFAULT_IMAGES = "{input}/{split}/{image_id}.jpg"


class HierOpenImagesOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add = parser.add_argument
        add(
            "--input",
            default=None,
            help="Open Images root (local path or fsspec URL). Default: generate the synthetic "
            "demo dataset under OUTPUT/synthetic_input and run on it.",
        )
        add(
            "--images",
            default=None,
            help="Template for image paths, any fsspec URL. "
            "Default: {input}/{split}/{image_id}.jpg",
        )
        add("--output", default=DEFAULT_OUTPUT, help="Output root: local path or fsspec URL.")
        add(
            "--splits",
            default=None,
            help="Comma list of splits. Default: those found among train, validation, test.",
        )
        add(
            "--stats_split",
            default=None,
            help="Comma list of splits whose pairs decide the label-pair statistics. "
            "Default: train if processed, else all processed splits.",
        )
        add(
            "--class_descriptions",
            default=None,
            help="Class descriptions CSV. Default: found in --input by its official name.",
        )
        add(
            "--hierarchy",
            default=None,
            help="bbox_labels_600_hierarchy.json. Default: found in --input when present.",
        )
        add(
            "--containment",
            type=float,
            default=0.8,
            help="A child box is inside a parent when at least this fraction of the child's area "
            "lies in the parent (inclusive).",
        )
        add(
            "--min_box_area",
            type=float,
            default=0.01,
            help="Boxes covering less than this fraction of the image are dropped before mining.",
        )
        add(
            "--duplicate_iou",
            type=float,
            default=0.9,
            help="Boxes with IoU at or above this are one object under two labels, never a "
            "part-of pair; above 1 disables.",
        )
        add(
            "--min_pair_frequency",
            type=int,
            default=50,
            help="A label pair (P, C) is accepted only with at least this many box pairs.",
        )
        add(
            "--min_pair_proportion",
            type=float,
            default=0.1,
            help="... and only if at least this fraction of P boxes contain a C box.",
        )
        add(
            "--cross_image_samples",
            type=int,
            default=1,
            help="Boxes sampled from other images for each (image, label).",
        )
        add(
            "--cross_image_pool",
            type=int,
            default=1000,
            help="Reservoir size per label from which cross-image samples are drawn.",
        )
        add("--seed", type=int, default=0, help="Every random choice derives from it.")
        add(
            "--crop_size",
            type=int,
            default=256,
            help="Longest side of every stored image and crop (never upscaled).",
        )
        add("--jpeg_quality", type=int, default=90)
        add("--samples_per_shard", type=int, default=1000)
        add(
            "--isa_guard",
            choices=("auto", "on", "off"),
            default="auto",
            help="Never accept label pairs related by Subcategory in the hierarchy JSON "
            "(is-a, not part-of). auto: on when the hierarchy file is present.",
        )
        add(
            "--skip_images",
            action="store_true",
            default=False,
            help="Run the annotation stages only (tables, no shards).",
        )
        add(
            "--max_reject_fraction",
            type=float,
            default=0.01,
            help="Fail the run, naming the worst reasons, when more input rows than this "
            "fraction are rejected.",
        )
        add(
            "--chunk_mib",
            type=float,
            default=64.0,
            help="Annotation CSVs are read in byte ranges of this size; no worker loads a "
            "whole file.",
        )
        add(
            "--bucket_mib",
            type=float,
            default=4.0,
            help="Images are grouped into hash buckets of about this much CSV each; a bucket "
            "is one shuffle element group, mined in one vectorised call.",
        )
        add(
            "--local_workers",
            type=int,
            default=1,
            help="Local runs only: worker processes for the FnApiRunner (multi_processing).",
        )


@dataclass(frozen=True)
class MiningConfig:
    """The resolved options the stages need; plain data, so it pickles to Dataflow workers."""

    output: str
    input: str | None
    images: str
    splits: tuple[str, ...]
    stats_splits: tuple[str, ...]
    class_descriptions: str | None
    hierarchy: str | None
    containment: float
    min_box_area: float
    duplicate_iou: float
    min_pair_frequency: int
    min_pair_proportion: float
    cross_image_samples: int
    cross_image_pool: int
    seed: int
    crop_size: int
    jpeg_quality: int
    samples_per_shard: int
    skip_images: bool
    isa_guard: bool
    max_reject_fraction: float
    chunk_bytes: int
    bucket_bytes: int
    local_workers: int

    def as_dict(self) -> dict:
        return asdict(self)


def _comma_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


def check_ranges(opts: HierOpenImagesOptions) -> None:
    """One clear line per bad option value (exit code 2 in the entry point)."""
    checks = [
        (0.0 < opts.containment <= 1.0, "--containment must be in (0, 1]"),
        (0.0 <= opts.min_box_area < 1.0, "--min_box_area must be in [0, 1)"),
        (opts.duplicate_iou > 0.0, "--duplicate_iou must be > 0 (above 1 disables the rule)"),
        (opts.min_pair_frequency >= 0, "--min_pair_frequency must be >= 0"),
        (0.0 <= opts.min_pair_proportion <= 1.0, "--min_pair_proportion must be in [0, 1]"),
        (opts.cross_image_samples >= 0, "--cross_image_samples must be >= 0"),
        (opts.cross_image_pool >= 1, "--cross_image_pool must be >= 1"),
        (opts.crop_size >= 8, "--crop_size must be >= 8"),
        (1 <= opts.jpeg_quality <= 100, "--jpeg_quality must be in [1, 100]"),
        (opts.samples_per_shard >= 1, "--samples_per_shard must be >= 1"),
        (0.0 <= opts.max_reject_fraction <= 1.0, "--max_reject_fraction must be in [0, 1]"),
        (opts.chunk_mib > 0, "--chunk_mib must be > 0"),
        (opts.bucket_mib > 0, "--bucket_mib must be > 0"),
        (opts.local_workers >= 1, "--local_workers must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)


def resolve(
    opts: HierOpenImagesOptions,
    found_splits: tuple[str, ...],
    input_root: str,
    class_descriptions: str | None,
    hierarchy: str | None,
) -> MiningConfig:
    """Fill the defaults that depend on the input (splits, stats split, file names)."""
    check_ranges(opts)
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
    return MiningConfig(
        output=opts.output,
        input=input_root,
        images=opts.images or DEFAULT_IMAGES,
        splits=splits,
        stats_splits=stats_splits,
        class_descriptions=class_descriptions,
        hierarchy=hierarchy,
        containment=opts.containment,
        min_box_area=opts.min_box_area,
        duplicate_iou=opts.duplicate_iou,
        min_pair_frequency=opts.min_pair_frequency,
        min_pair_proportion=opts.min_pair_proportion,
        cross_image_samples=opts.cross_image_samples,
        cross_image_pool=opts.cross_image_pool,
        seed=opts.seed,
        crop_size=opts.crop_size,
        jpeg_quality=opts.jpeg_quality,
        samples_per_shard=opts.samples_per_shard,
        skip_images=opts.skip_images,
        isa_guard=bool(hierarchy) and opts.isa_guard != "off",
        max_reject_fraction=opts.max_reject_fraction,
        chunk_bytes=max(1, int(opts.chunk_mib * (1 << 20))),
        bucket_bytes=max(1, int(opts.bucket_mib * (1 << 20))),
        local_workers=opts.local_workers,
    )
