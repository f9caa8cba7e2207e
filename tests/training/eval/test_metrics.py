"""Tests for training.eval.metrics: the relevance relation, same-class precision@k and hit@k,
and PR curves."""

import numpy as np
import pytest
import torch

from tests.training.eval.conftest import CROP_LABELS, IMAGE_LABELS, perfect_embedding, relevances
from training.eval.labels import LabelIndex
from training.eval.metrics import (
    CHILD_TO_PARENT,
    Relevance,
    answerable,
    hit_at_k,
    label_hits,
    precision_at_k,
    precision_recall_curve,
    same_class_retrieval,
)


def test_child_to_parent_relevance_reads_ground_truth_backwards(small_tree):
    _, child_to_parent = relevances(small_tree)
    assert child_to_parent.direction == CHILD_TO_PARENT
    # Every crop has exactly one correct image.
    assert child_to_parent.counts().tolist() == [1] * len(CROP_LABELS)
    assert child_to_parent.relevant(np.array([2, 8]), np.array([0, 1])).tolist() == [
        [True, False],
        [False, True],
    ]


def test_precision_at_k_is_the_mean_fraction_correct_and_can_fall_with_k():
    """The paper's Table 1 values fall with K; a hit rate can only rise."""
    hits = np.array([[True, True, False, False], [True, False, False, False]])
    assert precision_at_k(hits, ks=(1, 2, 4)) == {1: 1.0, 2: 0.75, 4: 0.375}
    assert hit_at_k(hits, ks=(1, 2, 4)) == {1: 1.0, 2: 1.0, 4: 1.0}


def test_hit_at_k_counts_first_hit():
    hits = np.array([[False, True, False], [False, False, False], [True, False, False]])
    assert hit_at_k(hits, ks=(1, 2, 3)) == {1: 1 / 3, 2: 2 / 3, 3: 2 / 3}
    with pytest.raises(ValueError, match="exceed"):
        hit_at_k(hits, ks=(5,))


def test_label_hits_in_both_directions():
    indices = np.array([[2, 0], [1, 2]])
    # Crop queries against single-label crops.
    assert label_hits(indices, np.array([7, 8, 7]), np.array([7, 9])).tolist() == [
        [True, True],
        [False, False],
    ]
    # Child -> parent: crop classes against multi-label images.
    images = np.array([[True, False], [False, True], [True, True]])
    assert label_hits(indices, images, np.array([1, 0])).tolist() == [[True, False], [False, True]]
    # Parent -> child: an image's classes against single-label crops.
    image_classes = np.array([[True, False, True], [False, True, False]])
    crops = np.array([0, 1, 2])
    assert label_hits(indices, crops, image_classes).tolist() == [[True, True], [True, False]]


def test_queries_without_a_same_class_candidate_are_not_answerable():
    crops = np.array([0, 0, 2])
    assert answerable(crops, np.array([[True, False, False], [False, True, False]])).tolist() == [
        True,
        False,
    ]
    images = np.array([[True, False, False], [True, False, True]])
    assert answerable(images, np.array([0, 1, 2])).tolist() == [True, False, True]


def test_same_class_retrieval_both_directions_on_perfect_embedding(small_tree):
    """Each crop's best image (alpha) holds its class; each image's best crops are its own
    branch's, whose classes are all among the image's classes."""
    images, crops = perfect_embedding()
    index = LabelIndex.from_tree(small_tree)
    parents, children = index.multi_hot(IMAGE_LABELS), index.encode(CROP_LABELS)
    scores = same_class_retrieval(crops, images, parents, children, "angle_c2p", 1.0, ks=(1, 2))
    assert scores.queries == 10 and scores.precision == {1: 1.0, 2: 0.5}
    assert scores.hit == {1: 1.0, 2: 1.0}
    # Parent -> child, one query per image: the car image's 6 branch crops are all correct,
    # the person image has 4; k = 50 exceeds the 10 crops and is dropped.
    scores = same_class_retrieval(images, crops, children, parents, "angle_p2c", 1.0, ks=(4, 6, 50))
    assert scores.precision == {4: 1.0, 6: pytest.approx((1.0 + 4 / 6) / 2)}
    assert scores.hit == {4: 1.0, 6: 1.0}


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
    parent_to_child, _ = relevances(small_tree)
    curve = precision_recall_curve(images, crops, parent_to_child, "angle_p2c", 1.0)
    assert len(curve.thresholds) == 181
    # Threshold 0 retrieves every pair; recall 1 and precision = 10 correct of 20 pairs.
    assert curve.recall[0] == 1.0 and curve.precision[0] == 0.5
    # A perfect embedding has a threshold with precision 1 and recall 1.
    assert ((curve.precision == 1.0) & (curve.recall == 1.0)).any()
