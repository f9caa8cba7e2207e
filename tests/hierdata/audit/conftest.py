"""Fixtures of the audit tests: two pipeline runs (synthetic with shards, real V3 without) and
their reports, built once for the whole package."""

from pathlib import Path

import pytest

from hierdata import synth
from hierdata.audit.report import build_report

SIZES = {"train": 120, "validation": 20, "test": 20}
DEMO_THRESHOLDS = ["--min_pair_frequency", "5", "--min_pair_proportion", "0.1"]
V3_THRESHOLDS = ["--min_pair_frequency", "2", "--min_pair_proportion", "0.05"]


def pipeline_main(argv: list[str]) -> int:
    """The pipeline's entry point, imported on first use: unit tests here need no Beam."""
    from pipelines.build_hier_openimages import main

    return main(argv)


@pytest.fixture(scope="package")
def demo_output(tmp_path_factory) -> tuple[Path, dict]:
    """A small synthetic run with images and shards, and its report."""
    root = tmp_path_factory.mktemp("audit_input")
    out = tmp_path_factory.mktemp("audit_demo")
    synth.write_synthetic_dataset(str(root), SIZES, seed=1)
    synth.write_synthetic_images(str(root), SIZES, seed=1)
    # One image gone and one cut short: the report must list both.
    missing, truncated = (
        sorted((root / split).glob("*.jpg"))[0] for split in ("validation", "test")
    )
    missing.unlink()
    truncated.write_bytes(truncated.read_bytes()[:200])
    assert (
        pipeline_main(
            [
                "--input",
                str(root),
                "--output",
                str(out),
                "--samples_per_shard",
                "50",
                *DEMO_THRESHOLDS,
            ]
        )
        == 0
    )
    return out, build_report(str(out))


@pytest.fixture(scope="package")
def v3_output(shared_data, tmp_path_factory) -> tuple[Path, dict]:
    """The real V3 head files, annotation stages only (no shards), and its report."""
    out = tmp_path_factory.mktemp("audit_v3")
    assert (
        pipeline_main(
            [
                "--input",
                str(shared_data / "openimages-v3-head"),
                "--output",
                str(out),
                "--splits",
                "validation,test",
                "--skip_images",
                *V3_THRESHOLDS,
            ]
        )
        == 0
    )
    return out, build_report(str(out))
