"""The pipeline's options, each declared once, as a row of OPTIONS.

From one `Option` row come the Beam argparse argument (so `--help` lists it with Beam's, its
default included), its range check, its key in run.json "options" and its place in the typed
sub-configs of pipelines.config that the stages receive. Defaults are DESIGN.md's.
"""

import math
from dataclasses import dataclass
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from hierdata.errors import InputError
from hierdata.image_files import check_image_template

RUN, INPUTS, MINING, CROSS_IMAGE, CROPS, SHARDING, EXECUTION = (
    "run",
    "inputs",
    "mining",
    "cross_image",
    "crops",
    "sharding",
    "execution",
)


@dataclass(frozen=True)
class Range:
    """An allowed interval of values; a missing end is unbounded; `open` ends are exclusive."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_number(self.low)}"
        return (
            f"in {'(' if self.low_open else '['}{_number(self.low)}, "
            f"{_number(self.high)}{')' if self.high_open else ']'}"
        )


def _number(value: float | None) -> str:
    """A bound as a user would type it: 1048576, not 1.04858e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Option:
    """One command-line option and where its value goes.

    name: the flag without "--". type: str, int, float, or bool for a bare flag. default: the
    flag's default. help: what it means (the default is appended). group: the config.RunConfig
    field holding its value (RUN: RunConfig itself). check: the allowed range. choices: the allowed
    words. default_help: the default in words, when it depends on the input. key: its name in
    the config and in run.json when the resolved value differs from the flag's (chunk_mib ->
    chunk_bytes).
    """

    name: str
    type: type
    default: Any
    help: str
    group: str
    check: Range | None = None
    choices: tuple[str, ...] = ()
    default_help: str | None = None
    key: str | None = None

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def field(self) -> str:
        return self.key or self.name

    def add_to(self, parser) -> None:
        """Add this option to an argparse parser (or argument group)."""
        default = self.default_help or ("off" if self.type is bool else self.default)
        text = f"{self.help} Default: {default}."
        if self.type is bool:
            parser.add_argument(self.flag, action="store_true", default=False, help=text)
            return
        extra = (
            {"choices": self.choices} if self.choices else {"metavar": self.type.__name__.upper()}
        )
        parser.add_argument(self.flag, type=self.type, default=self.default, help=text, **extra)

    def check_value(self, value: Any) -> None:
        """Raise InputError (one line, exit 2) when the value is outside the range.

        A float must be finite whatever its range: nan compares false with every bound and inf
        overflows the byte sizes derived from it.
        """
        if self.type is float and value is not None and not math.isfinite(value):
            raise InputError(f"{self.flag} must be a finite number, got {value}")
        if self.check is not None and value not in self.check:
            raise InputError(f"{self.flag} must be {self.check}")


_FRACTION = Range(0.0, 1.0)
_POSITIVE = Range(0.0, low_open=True)
_COUNT = Range(0)
_AT_LEAST_ONE = Range(1)
_MIB = Range(0.0, float(1 << 20), low_open=True)  # up to 1 TiB: larger sizes overflow nothing

# In run.json "options" order: the record lists them as this table does.
OPTIONS: tuple[Option, ...] = (
    Option("output", str, "./hier_openimages_out", "Output root: local path or fsspec URL.", RUN),
    Option(
        "input",
        str,
        None,
        "Open Images root (local path or fsspec URL).",
        INPUTS,
        default_help="generate the synthetic demo dataset under OUTPUT/synthetic_input and "
        "run on it",
    ),
    Option(
        "images",
        str,
        "{input}/{split}/{image_id}.jpg",
        "Template for image paths, any fsspec URL; placeholders {input}, {split} and "
        "{image_id} (required).",
        INPUTS,
    ),
    Option(
        "splits",
        str,
        None,
        "Comma list of splits.",
        INPUTS,
        default_help="those found among train, validation, test",
    ),
    Option(
        "stats_split",
        str,
        None,
        "Comma list of splits whose pairs decide the label-pair statistics.",
        MINING,
        default_help="train if processed, else all processed splits",
        key="stats_splits",
    ),
    Option(
        "class_descriptions",
        str,
        None,
        "Class descriptions CSV.",
        INPUTS,
        default_help="found in --input by its official name",
    ),
    Option(
        "hierarchy",
        str,
        None,
        "The label hierarchy JSON (bbox_labels_600_hierarchy.json).",
        INPUTS,
        default_help="found in --input when present",
    ),
    Option(
        "containment",
        float,
        0.8,
        "A child box is inside a parent when at least this fraction of the child's area lies "
        "in the parent (inclusive).",
        MINING,
        Range(0.0, 1.0, low_open=True),
    ),
    Option(
        "min_box_area",
        float,
        0.01,
        "Boxes covering less than this fraction of the image are dropped before mining.",
        MINING,
        Range(0.0, 1.0, high_open=True),
    ),
    Option(
        "duplicate_iou",
        float,
        0.9,
        "Boxes with IoU at or above this are one object under two labels, never a part-of "
        "pair; above 1 disables the rule.",
        MINING,
        _POSITIVE,
    ),
    Option(
        "min_pair_frequency",
        int,
        50,
        "A label pair (P, C) is accepted only with at least this many box pairs.",
        MINING,
        _COUNT,
    ),
    Option(
        "min_pair_proportion",
        float,
        0.1,
        "... and only if at least this fraction of P boxes contain a C box.",
        MINING,
        _FRACTION,
    ),
    Option(
        "same_object_iou",
        float,
        0.7,
        "... and only if the median IoU of its candidate box pairs is below this: at or above "
        "it the two labels name one object (Tire/Wheel, Woman/Girl), never a part-of pair; "
        "above 1 disables the rule.",
        MINING,
        _POSITIVE,
    ),
    Option(
        "cross_image_samples",
        int,
        1,
        "Boxes sampled from other images for each (image, label).",
        CROSS_IMAGE,
        Range(0, 1000),
    ),
    Option(
        "cross_image_pool",
        int,
        1000,
        "Reservoir size per label from which cross-image samples are drawn.",
        CROSS_IMAGE,
        Range(1, 10_000_000),
    ),
    Option("seed", int, 0, "Every random choice derives from it.", CROSS_IMAGE),
    Option(
        "crop_size",
        int,
        256,
        "Longest side of every stored image and crop (never upscaled).",
        CROPS,
        Range(8, 16384),
    ),
    Option("jpeg_quality", int, 90, "JPEG quality of every crop.", CROPS, Range(1, 100)),
    Option("samples_per_shard", int, 1000, "Samples per shard.", SHARDING, Range(1, 10_000_000)),
    Option("skip_images", bool, False, "Run the annotation stages only (tables, no shards).", RUN),
    Option(
        "isa_guard",
        str,
        "auto",
        "Never accept label pairs related by Subcategory in the hierarchy JSON (is-a, not "
        "part-of). auto: on when the hierarchy file is present.",
        MINING,
        choices=("auto", "on", "off"),
    ),
    Option(
        "max_reject_fraction",
        float,
        0.01,
        "Fail the run, naming the worst reasons, when more input rows than this fraction are "
        "rejected.",
        RUN,
        _FRACTION,
    ),
    Option(
        "max_image_reject_fraction",
        float,
        0.05,
        "Fail the run, naming the worst reasons, when more of the images planned for the "
        "shards than this fraction are missing, unreadable or corrupt.",
        RUN,
        _FRACTION,
    ),
    Option(
        "max_image_mib",
        float,
        64.0,
        "An image file larger than this is rejected (image_too_large) without being read.",
        INPUTS,
        _MIB,
        key="max_image_bytes",
    ),
    Option(
        "image_timeout",
        float,
        60.0,
        "Seconds allowed for reading one image from a remote URL (image_timeout reject).",
        INPUTS,
        Range(0.0, 3600.0, low_open=True),
    ),
    Option(
        "s3_anonymous",
        bool,
        False,
        "Read s3:// URLs without credentials (the public bucket s3://open-images-dataset).",
        INPUTS,
    ),
    Option(
        "image_ids",
        str,
        None,
        "A subset: a file (local or URL) of image ids, one per line or a CSV with an ImageID "
        "column; only boxes of these images are read, mined and sharded.",
        INPUTS,
        default_help="every image",
    ),
    Option(
        "chunk_mib",
        float,
        64.0,
        "Annotation CSVs are read in byte ranges of this size; no worker loads a whole file.",
        EXECUTION,
        _MIB,
        key="chunk_bytes",
    ),
    Option(
        "bucket_mib",
        float,
        4.0,
        "Images are grouped into hash buckets of about this much CSV each; a bucket is one "
        "shuffle element group, mined in one vectorised call.",
        EXECUTION,
        _MIB,
        key="bucket_bytes",
    ),
    Option(
        "local_workers",
        int,
        1,
        "Local runs only: worker processes for the FnApiRunner (multi_processing).",
        EXECUTION,
        Range(1, 256),
    ),
)


class HierOpenImagesOptions(PipelineOptions):
    """The OPTIONS as Beam pipeline options, parsed and listed by --help with Beam's own."""

    @classmethod
    def _add_argparse_args(cls, parser):
        for option in OPTIONS:
            option.add_to(parser)


def check_values(opts: HierOpenImagesOptions) -> None:
    """Raise InputError for the first value outside its range, or a bad --images template
    (before any work starts)."""
    for option in OPTIONS:
        option.check_value(getattr(opts, option.name))
    check_image_template(opts.images)
