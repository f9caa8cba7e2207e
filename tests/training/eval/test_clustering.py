"""Tests for training.eval.clustering: purity, clustering accuracy, AMI, Ward cuts per tree depth
and HHOT."""

import sys

import numpy as np
import pytest

from training.eval.clustering import (
    clustering_accuracy,
    hhot,
    hierarchy_clustering_scores,
    purity,
)
from training.eval.labels import LabelIndex


def test_purity_of_known_clustering():
    """Clusters {0, 0}, {0, 1, 1}, {2}: majorities 2 + 2 + 1 of 6 items."""
    truth = np.array([0, 0, 0, 1, 1, 2])
    assert purity(truth, np.array([1, 1, 2, 2, 2, 3])) == pytest.approx(5 / 6)
    assert purity(truth, np.array([9, 9, 9, 4, 4, 5])) == 1.0


def test_clustering_accuracy_matches_clusters_to_labels_one_to_one():
    """HierNet's accuracy: the same clustering matched by Hungarian assignment 2 + 2 + 1 of 6;
    a label split over two pure clusters is pure (purity 1) but only half of it is matched."""
    truth = np.array([0, 0, 0, 1, 1, 2])
    assert clustering_accuracy(truth, np.array([1, 1, 2, 2, 2, 3])) == pytest.approx(5 / 6)
    split = np.array([0, 0, 0, 0, 1, 1]), np.array([7, 7, 8, 8, 9, 9])
    assert purity(*split) == 1.0
    assert clustering_accuracy(*split) == pytest.approx(4 / 6)
    # Cluster 5 is mostly label 0, but matching it to label 1 frees label 0 for cluster 6.
    truth = np.array([0, 0, 1, 0, 0])
    assert clustering_accuracy(truth, np.array([5, 5, 5, 6, 6])) == pytest.approx(3 / 5)


def _blobs(labels: list[str], per_label: int, centres: dict, seed: int = 0):
    generator = np.random.default_rng(seed)
    rows = [
        centres[label] + 0.01 * generator.standard_normal(3)
        for label in labels
        for _ in range(per_label)
    ]
    return np.array(rows), [label for label in labels for _ in range(per_label)]


CENTRES = {  # the car branch far from the person branch; siblings apart within a branch
    "car": np.array([10.0, 0, 0]),
    "wheel": np.array([10.0, 1, 0]),
    "door": np.array([10.0, 0, 1]),
    "person": np.array([-10.0, 0, 0]),
    "hand": np.array([-10.0, 1, 0]),
}


def test_ward_cut_per_depth_scores_one_on_separated_hierarchy(small_tree):
    """Issue 5 "HierNet metrics": Ward cut at each depth's label count; AMI and purity 1."""
    index = LabelIndex.from_tree(small_tree)
    embeddings, names = _blobs(["car", "wheel", "door", "person", "hand"], 6, CENTRES)
    results = hierarchy_clustering_scores(embeddings, index.encode(names), index)
    assert [(r.depth, r.clusters) for r in results] == [(1, 2), (2, 5)]
    for row in results:
        assert row.ami == pytest.approx(1.0) and row.purity == 1.0 and row.hhot is None
        assert row.accuracy == 1.0


def test_ami_drops_when_labels_are_scrambled(small_tree):
    index = LabelIndex.from_tree(small_tree)
    embeddings, names = _blobs(["car", "wheel", "door", "person", "hand"], 6, CENTRES)
    scrambled = np.random.default_rng(1).permutation(index.encode(names))
    results = hierarchy_clustering_scores(embeddings, scrambled, index)
    assert all(r.ami < 0.3 and r.purity < 0.9 for r in results)


def test_hhot_costs_tree_distance_of_mixed_labels(small_tree):
    """One cluster holding wheel + door (siblings, 2 edges apart) moves half its mass 2 edges:
    cost 1. Holding wheel + hand (4 edges apart) costs 2. Pure clusters cost 0."""
    pytest.importorskip("ot")
    index = LabelIndex.from_tree(small_tree)
    distance = index.tree_distance()
    wheel, door, hand = index.encode(["wheel", "door", "hand"])
    one_cluster = np.array([0, 0])
    assert hhot(np.array([wheel, door]), one_cluster, distance) == pytest.approx(1.0)
    assert hhot(np.array([wheel, hand]), one_cluster, distance) == pytest.approx(2.0)
    assert hhot(np.array([wheel, hand]), np.array([3, 7]), distance) == pytest.approx(0.0)


def test_hhot_without_pot_says_how_to_install(monkeypatch, small_tree):
    monkeypatch.setitem(sys.modules, "ot", None)  # makes `import ot` raise ImportError
    index = LabelIndex.from_tree(small_tree)
    with pytest.raises(ImportError, match="pip install pot"):
        hierarchy_clustering_scores(np.zeros((4, 2)), np.zeros(4, dtype=int), index, with_hhot=True)


def test_large_inputs_are_subsampled_with_seed(small_tree):
    index = LabelIndex.from_tree(small_tree)
    embeddings, names = _blobs(["car", "person"], 30, CENTRES)
    results = hierarchy_clustering_scores(embeddings, index.encode(names), index, max_items=20)
    assert results[0].items == 20 and results[0].purity == 1.0
