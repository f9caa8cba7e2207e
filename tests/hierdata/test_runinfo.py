"""The run record: per-chunk counts, summaries, the launcher's record and the final status."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from hierdata import runinfo
from hierdata.errors import ImageRejectBoundExceeded, RejectBoundExceeded
from schemas import REJECTS, ROWS


def _rejects(*reasons: str) -> pa.Table:
    rows = [
        {"split": "train", "file": "f.csv", "line": i + 2, "reason": r, "raw": "x"}
        for i, r in enumerate(reasons)
    ]
    return pa.Table.from_pylist(rows, schema=REJECTS)


def test_read_counts_count_lines_rows_and_reasons() -> None:
    rows = ROWS.empty_table()
    counts = runinfo.read_counts("train", rows, _rejects("bad_number", "empty_box", "bad_number"))
    assert counts == {
        "lines": {"train": 3},
        "rows": {"train": 0},
        "rejects": {"train": {"bad_number": 2, "empty_box": 1}},
    }
    none = runinfo.read_counts("test", rows, _rejects())
    assert none == {"lines": {"test": 0}, "rows": {"test": 0}, "rejects": {"test": {}}}


def test_image_reject_summary_per_split_and_reason() -> None:
    rows = [
        {"split": "train", "reason": "image_missing"},
        {"split": "validation", "reason": "image_corrupt"},
        {"split": "train", "reason": "image_missing"},
        {"split": "train", "reason": "image_truncated"},
    ]
    assert runinfo.image_reject_summary(rows) == {
        "train": {"image_missing": 2, "image_truncated": 1},
        "validation": {"image_corrupt": 1},
    }
    assert runinfo.image_reject_summary([]) == {}


def test_start_record_fingerprints_the_inputs(tmp_path: Path) -> None:
    csv = tmp_path / "train-annotations-bbox.csv"
    csv.write_text("ImageID,LabelName\n")
    record = runinfo.start_record({"seed": 0}, "FnApiRunner", [str(csv)], 3, 2)
    assert list(record) == [
        "started_at",
        "started_epoch",
        "options",
        "runner",
        "versions",
        "inputs",
        "fingerprint",
        "chunks",
        "image_buckets",
    ]
    assert record["inputs"][0]["size"] == csv.stat().st_size
    assert (record["chunks"], record["image_buckets"], record["runner"]) == (3, 2, "FnApiRunner")


def _started() -> dict:
    return {"started_at": "t0", "started_epoch": 0.0, "options": {"seed": 0}}


def test_final_record_succeeds_within_the_bound() -> None:
    counts = {"lines": {"train": 100}, "rejects": {"train": {"bad_number": 1}}}
    record, error = runinfo.final_record(_started(), counts, 0.01, {"label_pairs": {"n": 1}})
    assert error is None
    assert record["status"] == "succeeded" and "error" not in record
    assert record["counts"] == counts and record["label_pairs"] == {"n": 1}
    assert list(record)[:3] == ["started_at", "started_epoch", "options"]
    assert list(record)[3:] == [
        "counts",
        "finished_at",
        "label_pairs",
        "elapsed_seconds",
        "status",
    ]
    assert record["elapsed_seconds"] > 0
    json.dumps(record)


def test_final_record_fails_past_the_bound() -> None:
    counts = {"lines": {"train": 100}, "rejects": {"train": {"bad_number": 2}}}
    record, error = runinfo.final_record(_started(), counts, 0.01, {})
    assert isinstance(error, RejectBoundExceeded)
    assert record["status"] == "failed" and record["error"] == str(error)
    assert "bad_number (2)" in record["error"]
    with pytest.raises(RejectBoundExceeded):
        raise error


def _image_run(planned: int, rejected: dict[str, int], written: int) -> dict:
    return {
        "image_rejects": {"train": rejected},
        "shards": {"train": {"shards": 1, "samples": written, "bytes": 10}} if written else {},
    }, {"lines": {"train": 10}, "samples_planned": {"train": planned}}


def test_missing_and_corrupt_images_are_in_the_headline() -> None:
    summaries, counts = _image_run(100, {"image_missing": 3, "image_corrupt": 2}, 95)
    record, error = runinfo.final_record(_started(), counts, 0.01, summaries, 0.05)
    assert error is None and record["status"] == "succeeded"  # 5 % is at the bound: passes
    assert record["images"] == {
        "planned": 100,
        "written": 95,
        "rejected": 5,
        "by_reason": {"image_corrupt": 2, "image_missing": 3},
    }


def test_image_reject_bound_fails_the_run_naming_the_worst_reasons() -> None:
    summaries, counts = _image_run(100, {"image_missing": 5, "image_truncated": 1}, 94)
    record, error = runinfo.final_record(_started(), counts, 0.01, summaries, 0.05)
    assert isinstance(error, ImageRejectBoundExceeded)
    assert record["status"] == "failed" and record["error"] == str(error)
    assert str(error).startswith("6 of 100 images rejected (6.00% > --max_image_reject_fraction")
    assert "worst reasons: image_missing (5), image_truncated (1)" in str(error)


def test_no_sample_written_is_a_failure_whatever_the_bound() -> None:
    """The issue's wrong --images template: 200 image_missing, no shard, yet "succeeded"."""
    summaries, counts = _image_run(200, {"image_missing": 200}, 0)
    record, error = runinfo.final_record(_started(), counts, 0.01, summaries, 1.0)
    assert isinstance(error, ImageRejectBoundExceeded) and record["status"] == "failed"
    assert "no shard sample written" in str(error) and "image_missing (200)" in str(error)


def test_skip_images_runs_have_no_image_headline() -> None:
    record, error = runinfo.final_record(_started(), {"lines": {"train": 1}}, 0.01, {}, 0.0)
    assert error is None and "images" not in record


def test_run_fingerprint_follows_content_and_outputs_not_location() -> None:
    options = {"output": "/a", "input": "/in", "seed": 0, "chunk_bytes": 1, "containment": 0.8}
    inputs = [{"url": "/in/train.csv", "size": 10, "sha256_first_mib": "ab", "mtime": 1.0}]
    base = runinfo.run_fingerprint(options, inputs)
    assert len(base) == 16
    moved = [dict(inputs[0], url="gs://b/in/train.csv", mtime=2.0)]
    assert (
        runinfo.run_fingerprint(dict(options, output="/b", input="gs://b/in", chunk_bytes=9), moved)
        == base
    )
    assert runinfo.run_fingerprint(dict(options, containment=0.7), inputs) != base
    assert runinfo.run_fingerprint(options, [dict(inputs[0], sha256_first_mib="cd")]) != base
