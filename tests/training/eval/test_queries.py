"""Tests for training.eval.queries: parents, children (boxes covering 5-30% of their image),
labels the tree lacks, and the seeded query subsets, on hand-made crop tables.
"""

import networkx as nx
import pyarrow as pa

from tests.training.eval.conftest import box_metadata
from training.eval.embed import CROPS, crop_rows
from training.eval.labels import LabelIndex
from training.eval.queries import build_eval_set


def _tree_index() -> LabelIndex:
    tree = nx.DiGraph(root="scene")
    tree.add_edges_from([("scene", "car"), ("car", "wheel"), ("scene", "house")])
    return LabelIndex.from_tree(tree)


def _crops(areas: list[float], labels: list[str]) -> pa.Table:
    """Image "a" with one box per area and label, then image "b" with one large house box."""
    boxes = [
        box_metadata(f"b{i:03d}", i, label, area)
        for i, (area, label) in enumerate(zip(areas, labels, strict=True))
    ]
    rows = crop_rows(
        {
            "image_id": "a",
            "split": "s",
            "labels": sorted(set(labels)),
            "boxes": boxes,
            "cross": [],
            "pairs": [],
        },
        "s.tar",
    )
    rows += crop_rows(
        {
            "image_id": "b",
            "split": "s",
            "labels": ["house"],
            "boxes": [box_metadata("b000", 0, "house", 0.5)],
            "cross": [],
            "pairs": [],
        },
        "s.tar",
    )
    return pa.Table.from_pylist(rows, schema=CROPS)


def test_children_are_boxes_covering_5_to_30_percent_inclusive():
    areas = [0.04, 0.05, 0.09, 0.30, 0.36]  # 0.05 and 0.30 are inside
    ev = build_eval_set(_crops(areas, ["wheel", "wheel", "car", "wheel", "car"]), _tree_index())
    assert ev.children.tolist() == [2, 3, 4]  # crop rows: 0 is image a, then b000..b004
    assert ev.parents.tolist() == [0, 6]
    assert ev.depth.tolist() == [0, 2, 2, 1, 2, 1, 0, 1]  # images 0, car 1, wheel 2, house 1
    # Every box hangs from its own image in these per-image trees.
    assert ev.box_tree_parent.tolist() == [0, 0, 0, 0, 0, 6]


def test_box_tree_parents_follow_each_images_tree():
    boxes = [box_metadata("b000", 0, "car", 0.5), box_metadata("b001", 1, "wheel", 0.1, "b000")]
    metadata = {"image_id": "c", "split": "s", "labels": ["car", "wheel"], "boxes": boxes,
                "cross": [], "pairs": []}  # fmt: skip
    crops = pa.Table.from_pylist(crop_rows(metadata, "s.tar"), schema=CROPS)
    ev = build_eval_set(crops, _tree_index())
    assert ev.boxes.tolist() == [1, 2] and ev.box_tree_parent.tolist() == [0, 1]


def test_labels_missing_from_the_tree_are_left_out_and_counted():
    ev = build_eval_set(_crops([0.3, 0.3], ["wheel", "ghost"]), _tree_index())
    assert ev.unknown_labels == ["ghost"]
    assert ev.counts()["boxes_with_labels_not_in_tree"] == 1
    assert ev.children.tolist() == [1]  # the ghost box is neither child nor clustered
    assert ev.labels.labels == ("car", "wheel", "house")  # depth-first codes
    assert ev.parent_labels[0].tolist() == [False, True, False]  # image a: wheel (ghost dropped)


def test_query_subsets_are_seeded_and_capped():
    crops = _crops([0.3] * 12, ["wheel"] * 12)
    first = build_eval_set(crops, _tree_index(), max_queries=5, seed=3)
    again = build_eval_set(crops, _tree_index(), max_queries=5, seed=3)
    other = build_eval_set(crops, _tree_index(), max_queries=5, seed=4)
    assert len(first.child_queries) == 5 and len(first.children) == 12
    assert first.child_queries.tolist() == again.child_queries.tolist()
    assert first.child_queries.tolist() != other.child_queries.tolist()
    assert first.parent_queries.tolist() == [0, 1]  # 2 images <= 5: all of them


def test_entailment_pairs_follow_the_trees_with_unrelated_partners():
    boxes = [box_metadata("b000", 0, "car", 0.5), box_metadata("b001", 1, "wheel", 0.1, "b000")]
    metadata = {"image_id": "c", "split": "s", "labels": ["car", "wheel"], "boxes": boxes,
                "cross": [], "pairs": []}  # fmt: skip
    rows = crop_rows(metadata, "s.tar")
    house_box = box_metadata("b000", 0, "house", 0.5)
    house = {"image_id": "d", "split": "s", "labels": ["house"], "boxes": [house_box],
             "cross": [], "pairs": []}  # fmt: skip
    rows += crop_rows(house, "s.tar")
    ev = build_eval_set(pa.Table.from_pylist(rows, schema=CROPS), _tree_index())
    parent, child, unrelated = ev.entailment_pairs(seed=0)
    # Image c > car box, car box > wheel box, image d > house box; crop rows 0-2 then 3-4.
    assert sorted(zip(parent.tolist(), child.tolist(), strict=True)) == [(0, 1), (1, 2), (3, 4)]
    pairs = zip(parent.tolist(), child.tolist(), strict=True)
    by_pair = dict(zip(pairs, unrelated.tolist(), strict=True))
    assert by_pair[(0, 1)] == 4 and by_pair[(1, 2)] == 4  # only the house is unrelated to c
    assert by_pair[(3, 4)] in (1, 2)  # car or wheel, never the house itself
