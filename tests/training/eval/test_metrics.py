"""Tests for training.eval.metrics: hierarchical precision/recall/OT, Top-k accuracy, PR curves."""

import numpy as np
import pytest
import torch

from training.eval.labels import LabelIndex
from training.eval.metrics import (
    CHILD_TO_PARENT,
    Relevance,
    hierarchical_retrieval,
    label_hits,
    label_ot_distances,
    precision_recall_at_k,
    precision_recall_curve,
    same_class_accuracy,
    topk_accuracy,
)

# Child crops of the small tree (scene -> car -> {door, wheel -> tyre}, person -> hand).
CROP_LABELS = ["car", "car", "wheel", "wheel", "wheel", "door", "person", "person", "hand", "hand"]
IMAGE_LABELS = [["car", "wheel", "door"], ["person", "hand"]]


def perfect_embedding() -> tuple[torch.Tensor, torch.Tensor]:
    """Images near the origin on their branch's ray; their crops further out on the same ray.

    Returns (images (2, D), crops (10, D)) Lorentz space components: a perfect hierarchical
    embedding of IMAGE_LABELS and CROP_LABELS.
    """
    dim = 2 + len(CROP_LABELS)
    axis = torch.eye(dim, dtype=torch.float64)
    branch = {"car": 0, "wheel": 0, "door": 0, "person": 1, "hand": 1}
    images = torch.stack([0.3 * axis[0], 0.3 * axis[1]])
    crops = torch.stack(
        [2.0 * axis[branch[label]] + 0.05 * axis[2 + i] for i, label in enumerate(CROP_LABELS)]
    )
    return images, crops


def _relevances(small_tree):
    index = LabelIndex.from_tree(small_tree)
    parents, children = index.multi_hot(IMAGE_LABELS), index.encode(CROP_LABELS)
    return (
        Relevance.parent_to_child(index, parents, children),
        Relevance.child_to_parent(index, children, parents),
    )


def test_perfect_hierarchical_embedding_gives_precision_one(small_tree):
    """Issue 5 "Tests": with ground truth down(labels(I)), a perfect embedding retrieves only
    correct children (parent -> child) and parents (child -> parent)."""
    images, crops = perfect_embedding()
    parent_to_child, child_to_parent = _relevances(small_tree)
    results = hierarchical_retrieval(images, crops, parent_to_child, [3, 4], "angle_p2c", 1.0)
    assert [(r.precision, r.queries) for r in results] == [(1.0, 2), (1.0, 2)]
    # K = 4 retrieves all of person's 4 crops but only 4 of car's 6.
    assert results[1].recall == pytest.approx((4 / 6 + 1.0) / 2)
    results = hierarchical_retrieval(crops, images, child_to_parent, [1], "angle_c2p", 1.0)
    assert results[0].precision == 1.0 and results[0].recall == 1.0
    assert results[0].ot is None


def test_ot_of_a_perfect_retrieval_of_all_correct_items_is_zero(small_tree):
    images, crops = perfect_embedding()
    parent_to_child, _ = _relevances(small_tree)
    car, person = parent_to_child.counts()
    assert (car, person) == (6, 4)
    values = hierarchical_retrieval(images[:1], crops, parent_to_child, [6], "angle_p2c", 1.0)
    assert values[0].ot == 0.0 and values[0].recall == 1.0


def test_ot_distance_equals_hand_computed_value_with_others_bin():
    """Issue 5 "OT distance": true bins (labels 0, 1, 2 of weights 2, 1, 1), then `others`.

    Retrieved: one label-0 item, one label-2 item, two wrong items (others). Normalised:
    truth (.5, .25, .25, 0), retrieved (.25, 0, .25, .5); CDFs (.5, .75, 1, 1) and
    (.25, .25, .5, 1); W1 = .25 + .5 + .5 + 0 = 1.25 bins.
    """
    gallery_codes = np.array([0, 0, 1, 2, 3, 4])
    # Label 5 is accepted but absent from the gallery: it makes no bin.
    accepted = np.array([[True, True, True, False, False, True]])
    retrieved = np.array([[0, 4, 3, 5]])
    assert label_ot_distances(accepted, gallery_codes, retrieved)[0] == pytest.approx(1.25)


def test_ot_of_retrieving_everything_matches_hand_value(small_tree):
    """K = all 10 crops. Car image: truth car 2, door 1, wheel 3 (depth-first order), retrieved
    the same plus 4 others: CDFs (1/3, 1/2, 1, 1) vs (.2, .3, .6, 1) give 11/15. Person image:
    (.5, 1, 1) vs (.2, .4, 1) give .9. Mean (11/15 + .9) / 2."""
    images, crops = perfect_embedding()
    parent_to_child, _ = _relevances(small_tree)
    result = hierarchical_retrieval(images, crops, parent_to_child, [1.0], "angle_p2c", 1.0)[0]
    assert result.count == 10
    assert result.ot == pytest.approx((11 / 15 + 0.9) / 2)
    assert result.precision == pytest.approx((6 / 10 + 4 / 10) / 2)


def test_child_to_parent_relevance_reads_ground_truth_backwards(small_tree):
    _, child_to_parent = _relevances(small_tree)
    assert child_to_parent.direction == CHILD_TO_PARENT
    # Every crop has exactly one correct image.
    assert child_to_parent.counts().tolist() == [1] * len(CROP_LABELS)
    assert child_to_parent.relevant(np.array([2, 8]), np.array([0, 1])).tolist() == [
        [True, False],
        [False, True],
    ]


def test_precision_recall_at_k_by_hand():
    relevant = np.array([[True, False, True, False], [False] * 4, [True] * 4])
    precision, recall = precision_recall_at_k(relevant, np.array([4, 0, 8]))
    assert precision[[0, 2]].tolist() == [0.5, 1.0] and recall[[0, 2]].tolist() == [0.5, 0.5]
    assert np.isnan(precision[1]) and np.isnan(recall[1])


def test_topk_accuracy_counts_first_hit():
    hits = np.array([[False, True, False], [False, False, False], [True, False, False]])
    assert topk_accuracy(hits, ks=(1, 2, 3)) == {1: 1 / 3, 2: 2 / 3, 3: 2 / 3}
    with pytest.raises(ValueError, match="exceed"):
        topk_accuracy(hits, ks=(5,))


def test_label_hits_single_and_multi_label_gallery():
    indices = np.array([[2, 0], [1, 2]])
    assert label_hits(indices, np.array([7, 8, 7]), np.array([7, 9])).tolist() == [
        [True, True],
        [False, False],
    ]
    multi = np.array([[True, False], [False, True], [True, True]])
    assert label_hits(indices, multi, np.array([1, 0])).tolist() == [[True, False], [False, True]]


def test_same_class_accuracy_both_directions_on_perfect_embedding(small_tree):
    """Issue 5 "Same-class retrieval": each crop's nearest image (alpha) holds its label."""
    images, crops = perfect_embedding()
    index = LabelIndex.from_tree(small_tree)
    parents, children = index.multi_hot(IMAGE_LABELS), index.encode(CROP_LABELS)
    accuracy = same_class_accuracy(crops, images, parents, children, "angle_c2p", 1.0, ks=(1, 2))
    assert accuracy == {1: 1.0, 2: 1.0}
    # Parent -> child: the car image's six best crops are its branch's six, "door" among them;
    # k = 50 exceeds the 10 crops and is dropped.
    door, hand = index.encode(["door", "hand"])
    accuracy = same_class_accuracy(
        images, crops, children, np.array([door, hand]), "angle_p2c", 1.0, ks=(6, 10, 50)
    )
    assert accuracy == {6: 1.0, 10: 1.0}


def _toy_relevance():
    """One query (1, 0); gallery (1, 0) relevant, (0, 1) relevant, (-1, 0), (1, 1)/sqrt(2)."""
    query = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    relevance = Relevance(
        np.array([[True, True, False, False]]), np.array([0]), np.arange(4), "parent_to_child"
    )
    return query, gallery, relevance


def test_precision_recall_curve_over_cosine_thresholds_by_hand():
    """Cosines 1, 0, -1, .71. At t = -.5: 3 retrieved, 2 correct; t = .5: 2 and 1; t = .9: 1, 1;
    t = 1.5: none (precision undefined)."""
    query, gallery, relevance = _toy_relevance()
    curve = precision_recall_curve(
        query,
        gallery,
        relevance,
        "cosine",
        thresholds=np.array([-0.5, 0.5, 0.9, 1.5]),
        gallery_chunk=3,
    )
    assert curve.retrieved.tolist() == [3, 2, 1, 0]
    assert curve.precision[:3].tolist() == [2 / 3, 0.5, 1.0] and np.isnan(curve.precision[3])
    assert curve.recall.tolist() == [1.0, 0.5, 0.5, 0.0]


def test_precision_recall_curve_distance_retrieves_below_threshold():
    """Euclidean distances 0, sqrt 2, 2, 0.77: retrieved when <= t."""
    query, gallery, relevance = _toy_relevance()
    curve = precision_recall_curve(
        query, gallery, relevance, "distance", thresholds=np.array([0.5, 1.0, 1.5])
    )
    assert curve.retrieved.tolist() == [1, 2, 3]
    assert curve.true_positives.tolist() == [1, 1, 2]


def test_precision_recall_curve_defaults_to_degree_angle_thresholds(small_tree):
    images, crops = perfect_embedding()
    parent_to_child, _ = _relevances(small_tree)
    curve = precision_recall_curve(images, crops, parent_to_child, "angle_p2c", 1.0)
    assert len(curve.thresholds) == 181
    # Threshold 0 retrieves every pair; recall 1 and precision = 10 correct of 20 pairs.
    assert curve.recall[0] == 1.0 and curve.precision[0] == 0.5
    # A perfect embedding has a threshold with precision 1 and recall 1.
    assert ((curve.precision == 1.0) & (curve.recall == 1.0)).any()
