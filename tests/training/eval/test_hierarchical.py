"""Tests for training.eval.hierarchical: precision, recall and OT at Top-K against down(L), on a
perfect embedding, hand-computed OT values and a brute-force reference."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.training.eval.conftest import perfect_embedding, relevances
from training.eval.hierarchical import (
    PAPER_TOP_K_FRACTIONS,
    hierarchical_retrieval,
    label_ot_distances,
)
from training.eval.metrics import Relevance
from training.eval.retrieval import topk_scores


def test_paper_top_k_fractions_are_table_2s_k_of_600k_candidates():
    assert [round(f, 6) for f in PAPER_TOP_K_FRACTIONS] == [0.25, 0.333333, 0.416667]


def test_perfect_hierarchical_embedding_gives_precision_one(small_tree):
    """Issue 5 "Tests": with ground truth down(labels(I)), a perfect embedding retrieves only
    correct children (parent -> child) and parents (child -> parent)."""
    images, crops = perfect_embedding()
    parent_to_child, child_to_parent = relevances(small_tree)
    results = hierarchical_retrieval(images, crops, parent_to_child, [3, 4], "angle_p2c", 1.0)
    assert [(r.precision, r.queries) for r in results] == [(1.0, 2), (1.0, 2)]
    # K = 4 retrieves all of person's 4 crops but only 4 of car's 6.
    assert results[1].recall == pytest.approx((4 / 6 + 1.0) / 2)
    results = hierarchical_retrieval(crops, images, child_to_parent, [1], "angle_c2p", 1.0)
    assert results[0].precision == 1.0 and results[0].recall == 1.0
    assert results[0].ot is None


def test_ot_of_a_perfect_retrieval_of_all_correct_items_is_zero(small_tree):
    images, crops = perfect_embedding()
    parent_to_child, _ = relevances(small_tree)
    car, person = parent_to_child.counts()
    assert (car, person) == (6, 4)
    car_only = replace(parent_to_child, query_keys=parent_to_child.query_keys[:1])
    values = hierarchical_retrieval(images[:1], crops, car_only, [6], "angle_p2c", 1.0)
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
    found = np.bincount(gallery_codes[[0, 4, 3, 5]], minlength=6)[None, :]
    counts = np.bincount(gallery_codes, minlength=6)
    assert label_ot_distances(accepted, counts, found)[0] == pytest.approx(1.25)


def test_ot_of_retrieving_everything_matches_hand_value(small_tree):
    """K = all 10 crops. Car image: truth car 2, door 1, wheel 3 (depth-first order), retrieved
    the same plus 4 others: CDFs (1/3, 1/2, 1, 1) vs (.2, .3, .6, 1) give 11/15. Person image:
    (.5, 1, 1) vs (.2, .4, 1) give .9. Mean (11/15 + .9) / 2."""
    images, crops = perfect_embedding()
    parent_to_child, _ = relevances(small_tree)
    result = hierarchical_retrieval(images, crops, parent_to_child, [1.0], "angle_p2c", 1.0)[0]
    assert result.count == 10
    assert result.ot == pytest.approx((11 / 15 + 0.9) / 2)
    assert result.precision == pytest.approx((6 / 10 + 4 / 10) / 2)


@pytest.mark.parametrize("score", ["angle_p2c", "distance", "cosine"])
def test_streamed_top_k_sets_match_a_sorted_reference(score):
    """Precision and recall from the rank buckets, in chunks of a few queries, equal those of
    an explicit top-K list (retrieval.topk_scores), for counts and fractions of K."""
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    gallery = torch.randn(40, 5, generator=generator, dtype=torch.float64)
    rng = np.random.default_rng(0)
    matrix = rng.random((7, 4)) < 0.5
    matrix[3] = False  # a query without a correct item is left out
    relevance = Relevance(matrix, np.arange(7), rng.integers(0, 4, 40), "parent_to_child")
    ks = [3, 0.25, 17, 40]
    results = hierarchical_retrieval(queries, gallery, relevance, ks, score, 1.0, block_floats=90)
    n_relevant = relevance.counts()
    for result in results:
        count = result.count
        _, indices = topk_scores(queries, gallery, count, score, 1.0)
        hits = relevance.relevant(np.arange(7), indices.numpy()).sum(1)
        keep = n_relevant > 0
        assert result.queries == keep.sum() < 7
        assert result.precision == pytest.approx(np.mean(hits[keep] / count))
        assert result.recall == pytest.approx(np.mean(hits[keep] / n_relevant[keep]))
    assert [r.count for r in results] == [3, 10, 17, 40]
    assert results[-1].recall == 1.0
