"""Tests for training.eval.topk_sets: exact top-K masks with ties, and nested rank buckets that
equal the top-K lists of retrieval.topk_scores for every score, across query chunks."""

import numpy as np
import pytest
import torch

from training.eval.retrieval import topk_scores
from training.eval.topk_sets import first_k_mask, iter_rank_buckets


def test_first_k_mask_selects_exactly_k_breaking_ties_by_lower_index():
    keys = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1], [3.0, 2.0, 1.0, 0.0, -1.0]])
    assert first_k_mask(keys, 2).tolist() == [
        [True, True, False, False, False],  # 0.9, then the first of three 0.5s
        [True, True, False, False, False],
    ]
    assert first_k_mask(keys, 3)[0].tolist() == [True, True, True, False, False]
    assert first_k_mask(keys, 9).all()


@pytest.mark.parametrize(
    ("score", "curv"),
    [("angle_p2c", 1.0), ("angle_c2p", 1.0), ("distance", 0.5), ("cosine", None),
     ("angle_p2c", None), ("distance", None)],
)  # fmt: skip
def test_rank_buckets_equal_sorted_top_k_sets(score, curv):
    generator = torch.Generator().manual_seed(1)
    queries = 0.7 * torch.randn(9, 6, generator=generator, dtype=torch.float64)
    gallery = 0.7 * torch.randn(50, 6, generator=generator, dtype=torch.float64)
    counts = [1, 5, 12, 50]
    starts, buckets = [], []
    # 120 keys per block: two rows of 50 items per chunk.
    for start, bucket in iter_rank_buckets(queries, gallery, counts, score, curv, 120):
        starts.append(start)
        buckets.append(bucket)
    assert starts == [0, 2, 4, 6, 8]
    bucket = torch.cat(buckets).numpy()
    assert bucket.dtype == np.uint8 and bucket.shape == (9, 50)
    for level, count in enumerate(counts):
        _, indices = topk_scores(queries, gallery, count, score, curv)
        expected = np.zeros((9, 50), dtype=bool)
        np.put_along_axis(expected, indices.numpy(), True, axis=1)
        assert ((bucket <= level) == expected).all(), (score, count)


def test_counts_must_be_ascending():
    with pytest.raises(ValueError, match="ascending"):
        next(iter_rank_buckets(torch.zeros(1, 2), torch.zeros(3, 2), [2, 1], "cosine"))
