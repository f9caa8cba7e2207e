"""Top-K sets for the paper's large K: which gallery items each query's first K hold, streamed
one chunk of queries at a time as nested rank buckets, never as a (Q, K) index matrix.

Hierarchical retrieval needs, per query, only how many of its first K items are correct and their
label histogram, not their order; so each chunk keeps one (rows, G) block of ranking keys and
marks the first K of every row by a k-th value selection (no sort, no exact scores).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from training.eval.retrieval import make_scorer
from training.geometry import compute_dtype

# Scores per block of (rows, G): 2**25 float32 is 128 MiB; angles keep a scratch block beside it.
BLOCK_FLOATS = 1 << 25
# Items of one k-th value selection at a time (its copy and indices: 48 MiB).
_SELECT_ITEMS = 1 << 22


def _row_counts(mask: Tensor) -> Tensor:
    """(B, 1) True items per row; summed as int8 into int32 (a bool sum builds an int64 copy)."""
    return mask.view(torch.int8).sum(1, keepdim=True, dtype=torch.int32)


def first_k_mask(keys: Tensor, k: int) -> Tensor:
    """(B, G) bool: the k largest keys of each row, exactly k, ties broken by lower index.

    Args:
        keys: (B, G) ranking keys, larger is better.
        k: 1 <= k; k >= G selects everything.
    """
    n = keys.shape[1]
    if k >= n:
        return torch.ones_like(keys, dtype=torch.bool)
    # kthvalue copies its input with an int64 index per item: a few rows at a time.
    rows = max(1, _SELECT_ITEMS // n)
    kth = torch.cat(
        [
            keys[start : start + rows].kthvalue(n - k + 1, dim=1, keepdim=True).values
            for start in range(0, keys.shape[0], rows)
        ]
    )
    above = keys > kth
    need = k - _row_counts(above)
    at = keys == kth
    # Usually one item sits at the k-th value; a row with more keeps its first ``need`` of them.
    for row in (_row_counts(at) > need)[:, 0].nonzero()[:, 0].tolist():
        tied = at[row].nonzero()[:, 0]
        at[row, tied[int(need[row]) :]] = False
    return above | at


def iter_rank_buckets(
    queries: Tensor,
    gallery: Tensor,
    counts: Sequence[int],
    score: str,
    curv: float | Tensor | None = None,
    block_floats: int = BLOCK_FLOATS,
) -> Iterator[tuple[int, Tensor]]:
    """For each chunk of queries, the smallest of ``counts`` whose top-K holds each item.

    Keys come from one matmul per chunk and the score's in-place key pass
    (training.eval.retrieval's scorers: a per-row monotone map of the score), so the top-K sets
    equal those of the exact score up to float32 near-ties. Peak memory is about
    ``block_floats`` keys (twice for angles), a uint8 bucket block of as many items and the
    selection's temporaries; rows per chunk = ``max(1, block_floats // G)``.

    Args:
        queries: (Q, D); gallery: (G, D), in the same space (see retrieval.iter_topk).
        counts: ascending top-K sizes, each in [1, G].
        score, curv: see retrieval.iter_topk.

    Yields:
        ``(start, bucket)``: bucket (B, G) uint8 for query rows ``start:start + B``; item g is in
        the top ``counts[i]`` of its row iff ``bucket[b, g] <= i`` (len(counts): in none).
    """
    if list(counts) != sorted(counts) or len(counts) > 254:
        raise ValueError(f"counts must be ascending (at most 254), got {counts}")
    scorer = make_scorer(score, curv)
    dtype = compute_dtype(queries, gallery)
    n = gallery.shape[0]
    with torch.no_grad(), torch.autocast(device_type=queries.device.type, enabled=False):
        columns = scorer.gallery_terms(gallery.to(dtype))
        rows = max(1, block_floats // n)
        buffer = torch.empty(rows * n, dtype=dtype, device=queries.device)
        scratch = torch.empty_like(buffer) if scorer.needs_scratch else buffer
        for start in range(0, queries.shape[0], rows):
            terms = scorer.query_terms(queries[start : start + rows].to(dtype))
            size = terms.matrix.shape[0] * n
            keys = buffer[:size].view(-1, n)
            torch.mm(terms.matrix, columns.matrix.T, out=keys)
            scorer.key_(keys, scratch[:size].view_as(keys), terms, columns)
            if not scorer.rank_largest:
                keys.neg_()
            bucket = torch.full(keys.shape, len(counts), dtype=torch.uint8, device=keys.device)
            # Largest K first: each smaller top-K set is nested in it and overwrites its bucket.
            for i in reversed(range(len(counts))):
                bucket.masked_fill_(first_k_mask(keys, counts[i]), i)
            yield start, bucket
