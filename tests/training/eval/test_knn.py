"""Tests for training.eval.knn: cosine top-5 majority vote for zero-shot classification."""

import numpy as np
import pytest
import torch

from training.eval.knn import knn_accuracy, knn_classify, majority_vote


def test_majority_vote_breaks_ties_by_nearest_neighbour():
    neighbours = np.array([[3, 1, 1, 2, 2], [4, 4, 5, 5, 5], [7, 8, 8, 7, 9]])
    assert majority_vote(neighbours).tolist() == [1, 5, 7]


def _angles_to_vectors(angles: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.stack([np.cos(angles), np.sin(angles)], axis=1))


def test_knn_classify_votes_among_top5_by_cosine():
    """Class 0 near angle 0, class 1 near pi/2; scale does not matter to cosine."""
    generator = np.random.default_rng(0)
    angles = np.concatenate([generator.normal(0.0, 0.1, 10), generator.normal(1.57, 0.1, 10)])
    train = _angles_to_vectors(angles) * torch.tensor(generator.uniform(0.5, 5.0, 20))[:, None]
    labels = np.repeat([0, 1], 10)
    queries = _angles_to_vectors(np.array([0.05, 1.5, 0.7, 0.9]))
    assert knn_classify(train, labels, queries, k=5).tolist() == [0, 1, 0, 1]
    assert knn_accuracy(train, labels, queries, np.array([0, 1, 1, 1])) == pytest.approx(0.75)


def test_knn_majority_beats_single_nearest():
    """The nearest candidate is class 1, but 3 of the top 5 are class 0."""
    train = _angles_to_vectors(np.array([0.0, 0.02, 0.03, 0.04, 0.05, 3.0]))
    labels = np.array([1, 0, 0, 1, 0, 1])
    assert knn_classify(train, labels, _angles_to_vectors(np.array([0.0])), k=5).tolist() == [0]
