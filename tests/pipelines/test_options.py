"""Options declared once: argparse arguments, help with defaults, range checks, typed configs."""

import argparse
from dataclasses import fields

import pytest

from hierdata.errors import InputError
from pipelines.arguments import check_arguments
from pipelines.config import GROUPS, RunConfig, resolve
from pipelines.options import (
    OPTIONS,
    RUN,
    HierOpenImagesOptions,
    Range,
    check_values,
)

# run.json "options" as every run so far wrote it: the same keys in the same order.
RECORD_KEYS = [
    "output", "input", "images", "splits", "stats_splits", "class_descriptions", "hierarchy",
    "containment", "min_box_area", "duplicate_iou", "min_pair_frequency",
    "min_pair_proportion", "same_object_iou", "cross_image_samples", "cross_image_pool",
    "seed", "crop_size",
    "jpeg_quality", "samples_per_shard", "skip_images", "isa_guard", "max_reject_fraction",
    "max_image_reject_fraction", "max_image_bytes", "image_timeout", "s3_anonymous",
    "image_ids", "chunk_bytes",
    "bucket_bytes", "local_workers",
]  # fmt: skip


def _parse(*argv: str) -> HierOpenImagesOptions:
    return HierOpenImagesOptions(list(argv))


def _resolve(*argv: str, hierarchy: str | None = None) -> RunConfig:
    opts = _parse(*argv)
    check_values(opts)
    return resolve(opts, ("train", "validation"), "/in", "/in/classes.csv", hierarchy)


def test_every_config_field_has_exactly_one_option() -> None:
    declared = [(option.group, option.field) for option in OPTIONS]
    assert len(set(declared)) == len(declared)
    own = [f.name for f in fields(RunConfig) if f.name not in GROUPS]
    assert [name for group, name in declared if group == RUN] == own
    for group, kind in GROUPS.items():
        assert [name for g, name in declared if g == group] == [f.name for f in fields(kind)]
    assert [option.field for option in OPTIONS] == RECORD_KEYS


def test_defaults_resolve_like_design() -> None:
    config = _resolve()
    assert config.as_dict() == {
        "output": "./hier_openimages_out",
        "input": "/in",
        "images": "{input}/{split}/{image_id}.jpg",
        "splits": ("train", "validation"),
        "stats_splits": ("train",),
        "class_descriptions": "/in/classes.csv",
        "hierarchy": None,
        "containment": 0.8,
        "min_box_area": 0.01,
        "duplicate_iou": 0.9,
        "min_pair_frequency": 50,
        "min_pair_proportion": 0.1,
        "same_object_iou": 0.7,
        "cross_image_samples": 1,
        "cross_image_pool": 1000,
        "seed": 0,
        "crop_size": 256,
        "jpeg_quality": 90,
        "samples_per_shard": 1000,
        "skip_images": False,
        "isa_guard": False,
        "max_reject_fraction": 0.01,
        "max_image_reject_fraction": 0.05,
        "max_image_bytes": 64 << 20,
        "image_timeout": 60.0,
        "s3_anonymous": False,
        "image_ids": None,
        "chunk_bytes": 64 << 20,
        "bucket_bytes": 4 << 20,
        "local_workers": 1,
    }
    assert list(config.as_dict()) == RECORD_KEYS


def test_values_land_in_their_sub_configs() -> None:
    config = _resolve(
        "--containment", "0.5", "--crop_size", "64", "--samples_per_shard", "7",
        "--bucket_mib", "0.5", "--seed", "3", "--skip_images", "--splits", "validation",
    )  # fmt: skip
    assert config.mining.containment == 0.5
    assert config.mining.stats_splits == ("validation",)  # no train among the splits
    assert config.crops.crop_size == 64 and config.crops.jpeg_quality == 90
    assert config.sharding.samples_per_shard == 7
    assert config.execution.bucket_bytes == 1 << 19
    assert config.cross_image.seed == 3
    assert config.skip_images and config.inputs.splits == ("validation",)


@pytest.mark.parametrize(
    ("guard", "hierarchy", "expected"),
    [("auto", None, False), ("auto", "/h.json", True), ("off", "/h.json", False)],
)
def test_isa_guard_resolves_against_the_hierarchy(guard, hierarchy, expected) -> None:
    config = _resolve("--isa_guard", guard, hierarchy=hierarchy)
    assert config.mining.isa_guard is expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--containment", "0"), "--containment must be in (0, 1]"),
        (("--min_box_area", "1"), "--min_box_area must be in [0, 1)"),
        (("--duplicate_iou", "0"), "--duplicate_iou must be > 0"),
        (("--min_pair_frequency", "-1"), "--min_pair_frequency must be >= 0"),
        (("--min_pair_proportion", "1.5"), "--min_pair_proportion must be in [0, 1]"),
        (("--cross_image_pool", "0"), "--cross_image_pool must be in [1, 10000000]"),
        (("--crop_size", "7"), "--crop_size must be in [8, 16384]"),
        (("--jpeg_quality", "101"), "--jpeg_quality must be in [1, 100]"),
        (("--chunk_mib", "0"), "--chunk_mib must be in (0, 1048576]"),
        (("--chunk_mib", "inf"), "--chunk_mib must be a finite number, got inf"),
        (("--bucket_mib", "nan"), "--bucket_mib must be a finite number, got nan"),
        (("--containment", "nan"), "--containment must be a finite number, got nan"),
        (("--local_workers", "0"), "--local_workers must be in [1, 256]"),
        (("--max_image_reject_fraction", "1.5"), "--max_image_reject_fraction must be in [0, 1]"),
        (("--max_image_mib", "0"), "--max_image_mib must be in (0, 1048576]"),
        (("--image_timeout", "0"), "--image_timeout must be in (0, 3600]"),
        (("--samples_per_shard", "0"), "--samples_per_shard must be in [1, 10000000]"),
        (("--cross_image_samples", "-1"), "--cross_image_samples must be in [0, 1000]"),
        (("--images", "{input}/{split}/x.jpg"), "--images '{input}/{split}/x.jpg' must contain"),
    ],
)
def test_out_of_range_values_are_one_line_input_errors(argv, message) -> None:
    with pytest.raises(InputError) as caught:
        check_values(_parse(*argv))
    assert str(caught.value).startswith(message)


def test_every_numeric_option_has_a_range() -> None:
    unchecked = [o.name for o in OPTIONS if o.type in (int, float) and o.check is None]
    assert unchecked == ["seed"]  # any integer seeds the generators


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--min_pair_frequncy", "5"], "unknown option --min_pair_frequncy (did you mean "
         "--min_pair_frequency?)"),  # the misspelt option
        (["--skip_images", "extra"], "unexpected argument 'extra'"),  # a stray positional
        (["stray"], "unexpected argument 'stray'"),
        (["--no_such_thing=1"], "unknown option --no_such_thing"),
        (["--crop_size", "big"], "argument --crop_size: invalid int value: 'big'"),
        (["--crop_size"], "argument --crop_size: expected one argument"),
        (["--min_pair_freq", "5"], "unknown option --min_pair_freq"),  # no abbreviations
    ],
)  # fmt: skip
def test_unknown_and_stray_arguments_are_refused(argv, message) -> None:
    with pytest.raises(InputError) as caught:
        check_arguments(argv)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "argv",
    [
        ["--runner=DataflowRunner", "--project=p", "--region=us-central1"],
        ["--experiments=use_runner_v2", "--experiments", "shuffle_mode=service"],
        ["--dataflow_job_file=job.json", "--dry_run=True", "--no_auth"],
        ["--temp_location=gs://b/t", "--sdk_location=container", "--max_num_workers=3"],
        ["--setup_file=./pyproject.toml", "--machine_type=n2-standard-4"],
        ["--direct_num_workers=2", "--input", "/x", "--skip_images"],
    ],
)
def test_every_beam_and_dataflow_option_is_still_accepted(argv) -> None:
    check_arguments(argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--splits", "train,test"), "--splits names test"),
        (("--stats_split", "test"), "--stats_split test is not among"),
        (("--isa_guard", "on"), "--isa_guard on needs a hierarchy"),
    ],
)
def test_resolve_refuses_what_the_input_lacks(argv, message) -> None:
    with pytest.raises(InputError, match=message):
        _resolve(*argv)


def test_help_states_every_default() -> None:
    parser = argparse.ArgumentParser()
    HierOpenImagesOptions._add_argparse_args(parser)
    text = " ".join(parser.format_help().split())
    for option in OPTIONS:
        assert option.flag in text
    assert "at least this many box pairs. Default: 50." in text
    assert "Default: off." in text  # --skip_images
    assert "Default: {input}/{split}/{image_id}.jpg." in text
    assert "Default: generate the synthetic demo dataset" in text


@pytest.mark.parametrize(
    ("interval", "inside", "outside", "text"),
    [
        (Range(0.0, 1.0), [0.0, 1.0], [-0.1, 1.1], "in [0, 1]"),
        (Range(0.0, 1.0, low_open=True), [1.0, 0.5], [0.0], "in (0, 1]"),
        (Range(0.0, 1.0, high_open=True), [0.0], [1.0], "in [0, 1)"),
        (Range(0.0, low_open=True), [1e-9, 9.0], [0.0], "> 0"),
        (Range(8), [8, 4096], [7], ">= 8"),
    ],
)
def test_range_bounds_and_text(interval, inside, outside, text) -> None:
    assert all(value in interval for value in inside)
    assert not any(value in interval for value in outside)
    assert str(interval) == text
