"""The run record: per-chunk counts, summaries, the launcher's record and the final status."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from hierdata import runinfo
from hierdata.errors import RejectBoundExceeded
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
