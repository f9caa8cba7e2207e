"""Tests for training.eval.retrieval: chunked top-K scoring against brute force, directions."""

import pytest
import torch

from training.eval.retrieval import (
    SCORES,
    higher_is_better,
    pairwise_scores,
    resolve_k,
    topk_scores,
)
from training.geometry import exp_map0

GEOMETRIES = [1.3, None]  # Lorentz curvature, or None for Euclidean


def _points(n: int, dim: int, scale: float, dtype: torch.dtype, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return exp_map0(torch.randn(n, dim, generator=generator, dtype=dtype) * scale, 1.3)


@pytest.mark.parametrize("curv", GEOMETRIES)
@pytest.mark.parametrize("score", SCORES)
def test_chunked_topk_equals_brute_force(score, curv):
    """Issue 5 "Scoring speed": the chunked one-matmul ranking is the exact top-K."""
    queries = _points(37, 16, 0.5, torch.float64, 0)
    gallery = _points(500, 16, 1.0, torch.float64, 1)
    brute = pairwise_scores(queries, gallery, score, curv)
    want_values, want_index = brute.topk(20, dim=1, largest=higher_is_better(score))
    # Chunks that do not divide Q or G: several query chunks and gallery merges.
    values, index = topk_scores(queries, gallery, 20, score, curv, query_chunk=8, gallery_chunk=150)
    assert torch.equal(index, want_index)
    torch.testing.assert_close(values, want_values, rtol=0, atol=1e-12)


@pytest.mark.parametrize("curv", GEOMETRIES)
@pytest.mark.parametrize("score", SCORES)
def test_float32_topk_matches_float64_brute_force(score, curv):
    """In float32 the ranking and values agree with the float64 truth to rounding."""
    queries = _points(40, 32, 0.5, torch.float64, 2)
    gallery = _points(800, 32, 1.0, torch.float64, 3)
    brute = pairwise_scores(queries, gallery, score, curv)
    want_values, want_index = brute.topk(10, dim=1, largest=higher_is_better(score))
    values, index = topk_scores(
        queries.float(), gallery.float(), 10, score, curv, query_chunk=16, gallery_chunk=300
    )
    assert values.dtype == torch.float32
    assert (index == want_index).float().mean() >= 0.99
    torch.testing.assert_close(values.double(), want_values, rtol=0, atol=5e-5)


def test_values_sorted_best_first():
    queries, gallery = _points(5, 8, 0.5, torch.float32, 4), _points(60, 8, 1.0, torch.float32, 5)
    for score in SCORES:
        values, _ = topk_scores(queries, gallery, 10, score, 1.3)
        steps = values.diff(dim=1)
        assert bool((steps <= 0).all() if higher_is_better(score) else (steps >= 0).all())


def test_angle_scores_rank_the_entailed_partner_first():
    """DESIGN "Loss": beta = pi - ext(parent, child) and alpha = ext(child, parent) are both
    largest for a child further out on its parent's ray."""
    axis = torch.eye(4, dtype=torch.float64)
    parent = 0.5 * axis[0]
    child = 2.0 * axis[0] + 0.05 * axis[1]
    # Sideways points; a point beyond the origin would also have alpha ~ pi (same geodesic).
    others = torch.stack([2.0 * axis[1], 2.0 * axis[2], 0.5 * axis[3], axis[1] + axis[3]])
    children = torch.cat([others, child[None]])
    values, index = topk_scores(parent[None], children, 5, "angle_p2c", 1.0)
    assert index[0, 0] == 4 and values[0, 0] > 3.0  # beta near pi
    parents = torch.cat([others, parent[None]])
    values, index = topk_scores(child[None], parents, 5, "angle_c2p", 1.0)
    assert index[0, 0] == 4 and values[0, 0] > 3.0  # alpha near pi


@pytest.mark.parametrize(
    ("k", "n", "want"), [(5, 100, 5), (100, 100, 100), (0.1, 200, 20), (1e-6, 50, 1), (1.0, 7, 7)]
)
def test_resolve_k_counts_and_fractions(k, n, want):
    """Issue 5: Top-K as a count or as a fraction of the candidates."""
    assert resolve_k(k, n) == want


@pytest.mark.parametrize("k", [0, 101, 1.5, 0.0, True])
def test_resolve_k_rejects_out_of_range(k):
    with pytest.raises((ValueError, TypeError)):
        resolve_k(k, 100)


def test_unknown_score_and_bad_curvature_raise():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="score must be one of"):
        topk_scores(x, x, 1, "euclid")
    with pytest.raises(ValueError, match="curvature"):
        topk_scores(x, x, 1, "distance", curv=0.0)
