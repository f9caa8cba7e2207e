"""Tests for training.eval.labels: depth-first codes, the ground-truth down(L) matrix (from the
label closure), depths, tree distances; and the loader that reads them (evaluate.read_label_tree).
"""

import json

import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import pytest

from hierdata import ground_truth, trees
from hierdata.errors import InputError
from hierdata.trees import down
from training.eval.evaluate import read_label_tree
from training.eval.labels import LabelIndex, depth_first_labels


def test_depth_first_order_keeps_subtrees_together(small_tree):
    assert depth_first_labels(small_tree) == ["car", "door", "wheel", "tyre", "person", "hand"]


def test_descendants_matrix_is_down_in_the_tree(small_tree):
    """descendants[i, j] iff labels[j] in the tree's down(labels[i]); without a closure the
    ground truth is the same."""
    tree = small_tree
    index = LabelIndex.from_tree(tree)
    for i, label in enumerate(index.labels):
        assert {index.labels[j] for j in np.flatnonzero(index.descendants[i])} == down(tree, label)
    assert dict(zip(index.labels, index.depth.tolist(), strict=True)) == {
        "car": 1,
        "door": 2,
        "wheel": 2,
        "tyre": 3,
        "person": 1,
        "hand": 2,
    }
    assert (index.ground_truth == index.descendants).all()


# The label graph behind small_tree also accepted Person ⊃ Wheel (the display tree keeps Wheel
# under Car only): the ground truth is its closure.
CLOSURE_DOWN = {
    "car": {"car", "door", "wheel", "tyre"},
    "wheel": {"wheel", "tyre"},
    "person": {"person", "hand", "wheel", "tyre"},
    "unknown": {"unknown", "car"},  # not in the tree: left out
}


def test_ground_truth_comes_from_the_closure_and_the_tree_keeps_depths(small_tree):
    """DESIGN "Ground truth": down(L) is the label graph's closure, not the display tree's."""
    index = LabelIndex.from_tree(small_tree, CLOSURE_DOWN)
    accepted = index.accepted(index.multi_hot([["person"], ["door"]]))
    named = [{index.labels[j] for j in np.flatnonzero(row)} for row in accepted]
    # Door and hand are missing from the closure mapping: each still counts as itself.
    assert named == [{"person", "hand", "wheel", "tyre"}, {"door"}]
    # Child -> parent reads the same relation backwards: a wheel crop finds Car and Person.
    wheel = index.encode(["wheel"])[0]
    assert {index.labels[i] for i in np.flatnonzero(index.ground_truth[:, wheel])} == {
        "car", "wheel", "person",
    }  # fmt: skip
    # Depths and tree distances stay the display tree's.
    plain = LabelIndex.from_tree(small_tree)
    assert (index.depth == plain.depth).all()
    assert (index.tree_distance() == plain.tree_distance()).all()


def test_read_label_tree_reads_the_closure_beside_the_tree(small_tree, tmp_path):
    graph = nx.DiGraph()
    graph.add_edges_from([("car", "wheel"), ("car", "door"), ("wheel", "tyre"),
                          ("person", "hand"), ("person", "wheel")])  # fmt: skip
    for label in graph:
        graph.nodes[label]["name"] = label.title()
    pq.write_table(ground_truth.label_closure(graph), tmp_path / "label_closure.parquet")
    small_tree.nodes["car"]["name"] = "Car"
    (tmp_path / "label_tree.json").write_text(json.dumps(trees.node_link_data(small_tree)))
    for where in (tmp_path, tmp_path / "label_tree.json"):
        index, names = read_label_tree(str(where))
        person = index.encode(["person"])[0]
        assert {index.labels[j] for j in np.flatnonzero(index.ground_truth[person])} == {
            "person", "hand", "wheel", "tyre",
        }  # fmt: skip
        assert names["car"] == "Car"
    (tmp_path / "label_closure.parquet").unlink()
    with pytest.raises(InputError, match="label_closure.parquet"):
        read_label_tree(str(tmp_path))


def test_accepted_is_union_of_down_sets(small_tree):
    index = LabelIndex.from_tree(small_tree)
    accepted = index.accepted(index.multi_hot([["wheel", "hand"], [], ["car"]]))
    named = [{index.labels[j] for j in np.flatnonzero(row)} for row in accepted]
    assert named == [{"wheel", "tyre", "hand"}, set(), {"car", "door", "wheel", "tyre"}]


def test_at_depth_maps_to_ancestor_or_keeps_shallow_labels(small_tree):
    index = LabelIndex.from_tree(small_tree)
    codes = index.encode(["tyre", "wheel", "door", "car", "hand"])
    assert [index.labels[c] for c in index.at_depth(codes, 1)] == ["car"] * 4 + ["person"]
    assert [index.labels[c] for c in index.at_depth(codes, 2)] == [
        "wheel",
        "wheel",
        "door",
        "car",
        "hand",
    ]


def test_tree_distance_counts_edges_through_lowest_common_ancestor(small_tree):
    tree = small_tree
    index = LabelIndex.from_tree(tree)
    want = dict(nx.all_pairs_shortest_path_length(tree.to_undirected()))
    distance = index.tree_distance()
    for i, a in enumerate(index.labels):
        for j, b in enumerate(index.labels):
            assert distance[i, j] == want[a][b]


def test_encode_unknown_label_names_it(small_tree):
    with pytest.raises(KeyError, match="boat"):
        LabelIndex.from_tree(small_tree).encode(["car", "boat"])
