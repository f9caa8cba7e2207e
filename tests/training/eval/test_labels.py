"""Tests for training.eval.labels: depth-first codes, down(L) matrix, depths, tree distances."""

import networkx as nx
import numpy as np
import pytest

from hierdata.trees import down
from training.eval.labels import LabelIndex, depth_first_labels


def test_depth_first_order_keeps_subtrees_together(small_tree):
    assert depth_first_labels(small_tree) == ["car", "door", "wheel", "tyre", "person", "hand"]


def test_descendants_matrix_is_down(small_tree):
    """DESIGN "Ground truth": descendants[i, j] iff labels[j] in down(labels[i])."""
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
