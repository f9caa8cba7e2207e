"""Run statistics in stats.json (hierdata.audit.stats) against the tables they count."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.compute as pc
import pytest

from hierdata import ground_truth, outputs
from hierdata.audit import stats as audit_stats
from tests.hierdata.audit.conftest import SIZES
from tests.hierdata.audit.helpers import per_split


def test_stats_json_counts_match_the_tables(demo_output):
    out, stats = demo_output
    assert json.loads((out / "report" / "stats.json").read_text())["counts"] == stats["counts"]
    boxes = outputs.read_table(str(out), "boxes")
    pairs = outputs.read_table(str(out), "pairs")
    counts = stats["counts"]
    assert counts["boxes"] == per_split(boxes)
    assert counts["kept_boxes"] == per_split(boxes, boxes.column("kept"))
    assert counts["images"] == {
        s: len(set(boxes.filter(pc.equal(boxes["split"], s))["image_id"].to_pylist()))
        for s in SIZES
    }
    assert counts["accepted_pairs"] == per_split(pairs, pc.equal(pairs["kind"], "box_box"))
    assert counts["candidate_pairs"] == per_split(outputs.read_table(str(out), "candidates"))
    # Every synthetic image has kept boxes and a sample, but the two broken ones.
    assert counts["samples"] == {"train": 120, "validation": 19, "test": 19}
    assert counts["image_rejects"] == {"train": 0, "validation": 1, "test": 1}
    assert stats["run_json_mismatches"] == []


def test_rejects_by_reason_with_example_rows(demo_output):
    out, stats = demo_output
    rejects = outputs.read_table(str(out), "rejects")
    reasons = Counter(rejects.column("reason").to_pylist())
    images = {reason: n for reason, n in reasons.items() if reason.startswith("image_")}
    rows = stats["rejects"]["rows"]
    assert rows["by_reason"] == {r: n for r, n in reasons.items() if r not in images}
    assert rows["total"] == rejects.num_rows - 2 > 0
    for reason, examples in rows["examples"].items():
        assert 1 <= len(examples) <= 3 and {e["reason"] for e in examples} == {reason}
    broken = stats["rejects"]["images"]
    assert broken["by_reason"] == images and broken["total"] == 2
    assert "image_missing" in images
    files = {e["file"] for examples in broken["examples"].values() for e in examples}
    assert {Path(f).parent.name for f in files} == {"validation", "test"}
    assert all(f.endswith(".jpg") for f in files)


def test_hierarchy_classes_are_the_union_of_down_sets(demo_output):
    """DESIGN "Ground truth": the classes of an image's hierarchy trees = ∪ down(L), down(L)
    read from the label graph's closure (trees/label_closure.parquet)."""
    out, stats = demo_output
    boxes = outputs.read_table(str(out), "boxes")
    closure = ground_truth.read_closure(str(out / "trees" / "label_closure.parquet"))
    down = ground_truth.down_sets(closure)
    labels: dict[tuple, set] = {}
    for row in boxes.filter(boxes["kept"]).select(["split", "image_id", "label"]).to_pylist():
        labels.setdefault((row["split"], row["image_id"]), set()).add(row["label"])
    union = [
        len(set().union(*(down.get(label, {label}) for label in found)))
        for found in labels.values()
    ]
    classes = [len(found) for found in labels.values()]
    overall = stats["per_image"]["by_split"]["all"]
    assert overall["hierarchy_classes_mean"] == pytest.approx(np.mean(union))
    assert overall["classes_mean"] == pytest.approx(np.mean(classes))
    assert overall["hierarchy_classes_mean"] > overall["classes_mean"]
    assert overall["boxes_mean"] == pytest.approx(boxes.num_rows / len(labels))
    assert sum(stats["per_image"]["histograms"]["classes"].values()) == len(labels)


def test_label_pair_totals_apply_the_thresholds_inclusively():
    """DESIGN "Label-pair statistics": isa_blocked passed both thresholds but is an is-a pair;
    same_object_blocked passed both, is not is-a, but is one object under two labels."""
    label_pairs = pl.DataFrame(
        {
            "frequency": [50, 49, 50, 80, 10, 60, 70],
            "proportion": [0.1, 0.5, 0.0999, 0.3, 0.9, 0.2, 0.2],
            "isa": [False, False, False, True, True, False, True],
            "same_object": [False, False, True, False, False, True, True],
            "accepted": [True, False, False, False, False, False, False],
        }
    )
    passing = audit_stats.thresholds_passed(label_pairs, 50, 0.1)
    assert passing.tolist() == [True, False, False, True, False, True, True]
    assert audit_stats.label_pair_totals(label_pairs, 50, 0.1) == {
        "candidate": 7,
        "accepted": 1,
        "isa": 3,
        "isa_blocked": 2,
        "same_object": 3,
        "same_object_blocked": 1,
        "passing_thresholds": 4,
    }
    totals = audit_stats.label_pair_totals(label_pairs.clear(), 50, 0.1)
    assert set(totals.values()) == {0}
