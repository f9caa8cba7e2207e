"""Per-image trees (DESIGN "Per-image tree"): each kept box under its smallest enclosing
accepted parent box, else the image."""

from typing import Any

import pyarrow as pa
import pytest

from hierdata.trees import image_trees
from schemas.tables import BOXES, IMAGE_TREES, PAIRS


def box(image_id: str, box_id: int, label: str, area: float, kept: bool = True) -> dict[str, Any]:
    side = area**0.5
    return {
        "split": "train", "image_id": image_id, "box_id": box_id, "label": label,
        "source": None, "confidence": None, "xmin": 0.0, "xmax": side, "ymin": 0.0,
        "ymax": side, "is_occluded": 0, "is_truncated": 0, "is_group_of": 0,
        "is_depiction": 0, "is_inside": 0, "file": "f.csv", "line": box_id + 2,
        "area": area, "kept": kept,
    }  # fmt: skip


def link(image_id: str, parent_box: int, child_box: int, kind: str = "box_box") -> dict[str, Any]:
    return {
        "split": "train", "image_id": image_id, "kind": kind, "parent_box": parent_box,
        "child_box": child_box, "parent_label": None if parent_box < 0 else "p",
        "child_label": "c", "containment": 1.0, "iou": 0.1,
    }  # fmt: skip


def tree_rows(table: pa.Table) -> list[tuple]:
    assert table.schema == IMAGE_TREES
    return [(r["image_id"], r["box_id"], r["parent_box"], r["depth"]) for r in table.to_pylist()]


def test_image_tree_smallest_enclosing_parent() -> None:
    # Image "a": car 0 ⊃ wheel 1 ⊃ hubcap 2, and car ⊃ hubcap; two equal-area parents of a
    # bolt 5 (boxes 3 and 4): the lower box_id wins.
    boxes = [
        box("a", 0, "car", 0.5), box("a", 1, "wheel", 0.1), box("a", 2, "hubcap", 0.02),
        box("a", 4, "plate", 0.05), box("a", 3, "door", 0.05), box("a", 5, "bolt", 0.01),
    ]  # fmt: skip
    links = [link("a", 0, 2), link("a", 1, 2), link("a", 0, 1), link("a", 4, 5), link("a", 3, 5)]
    links += [link("a", -1, i, "image_box") for i in range(6)]
    table = image_trees(pa.Table.from_pylist(boxes, BOXES), pa.Table.from_pylist(links, PAIRS))
    assert tree_rows(table) == [
        ("a", 0, -1, 1), ("a", 1, 0, 2), ("a", 2, 1, 3), ("a", 3, -1, 1), ("a", 4, -1, 1),
        ("a", 5, 3, 2),
    ]  # fmt: skip
    assert table.column("label").to_pylist()[:3] == ["car", "wheel", "hubcap"]


def test_image_tree_falls_back_to_image() -> None:
    # Box 1 of "b" is inside box 0 geometrically, but no accepted pair says so; box 2 is not
    # kept. Image "a" reuses the same box ids: links never cross images or splits.
    boxes = [
        box("b", 0, "car", 0.5), box("b", 1, "bird", 0.1), box("b", 2, "wheel", 0.001, False),
        box("a", 0, "car", 0.5), box("a", 1, "wheel", 0.1),
        {**box("a", 1, "wheel", 0.1), "split": "test"},
    ]  # fmt: skip
    links = [link("a", 0, 1)]
    table = image_trees(pa.Table.from_pylist(boxes, BOXES), pa.Table.from_pylist(links, PAIRS))
    # Sorted by (split, image_id, box_id): the "test" box first.
    assert tree_rows(table) == [
        ("a", 1, -1, 1), ("a", 0, -1, 1), ("a", 1, 0, 2), ("b", 0, -1, 1), ("b", 1, -1, 1),
    ]  # fmt: skip
    assert table.column("split").to_pylist() == ["test", "train", "train", "train", "train"]
    table = image_trees(pa.Table.from_pylist(boxes[:2], BOXES), PAIRS.empty_table())
    assert tree_rows(table) == [("b", 0, -1, 1), ("b", 1, -1, 1)]


def test_image_tree_rejects_pairs_naming_unknown_boxes() -> None:
    boxes = pa.Table.from_pylist([box("a", 0, "car", 0.5), box("a", 1, "x", 0.001, False)], BOXES)
    with pytest.raises(ValueError, match="child_box"):
        image_trees(boxes, pa.Table.from_pylist([link("a", 0, 1)], PAIRS))


def test_image_tree_rejects_cyclic_pairs_and_accepts_empty_tables() -> None:
    boxes = pa.Table.from_pylist([box("a", 0, "car", 0.5), box("a", 1, "door", 0.5)], BOXES)
    with pytest.raises(ValueError, match="cycle"):
        image_trees(boxes, pa.Table.from_pylist([link("a", 0, 1), link("a", 1, 0)], PAIRS))
    empty = image_trees(BOXES.empty_table(), PAIRS.empty_table())
    assert empty.schema == IMAGE_TREES and empty.num_rows == 0
