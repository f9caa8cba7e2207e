"""Tests for training.eval.embed: the crop table of a shard sample and a shard's fingerprint."""

import json

import pyarrow as pa
import pytest

from tests.training.eval.conftest import box_metadata
from training.eval.embed import CROPS, crop_rows, shard_fingerprint


def test_crop_rows_embed_image_and_boxes_but_never_cross_image_copies():
    metadata = {
        "image_id": "im1",
        "split": "validation",
        "labels": ["car", "wheel"],
        "boxes": [
            box_metadata("b000", 0, "car", 0.64),
            box_metadata("b001", 1, "wheel", 0.09, parent="b000"),
        ],
        "cross": [{"key": "x000", "label": "wheel", "source_image_id": "im2", "source_box_id": 4}],
        "pairs": [],
    }
    rows = crop_rows(metadata, "s.tar")
    assert [r["key"] for r in rows] == ["img", "b000", "b001"]
    assert [r["image_depth"] for r in rows] == [0, 1, 2]
    assert [r["area_fraction"] for r in rows] == pytest.approx([1.0, 0.64, 0.09])
    assert rows[0]["labels"] == ["car", "wheel"] and rows[2]["labels"] == ["wheel"]
    assert pa.Table.from_pylist(rows, schema=CROPS).num_rows == 3


def test_shard_fingerprint_is_the_marker_sha256(tmp_path):
    (tmp_path / "s-000000.tar").write_bytes(b"x")
    (tmp_path / "s-000000.json").write_text(json.dumps({"sha256": "abc"}))
    assert shard_fingerprint(str(tmp_path / "s-000000.tar")) == "sha256:abc"
