"""Hierarchical retrieval at the paper's Top-K: precision, recall and the OT distance between the
retrieved and the true label distribution, against down(labels(I)) (DESIGN "Ground truth").

Top-K sets come streamed from training.eval.topk_sets, so K may be a large fraction of the
candidates (Table 2: 150k-250k of about 600k) without a (Q, K) index matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from torch import Tensor

from training.eval.metrics import PARENT_TO_CHILD, Relevance
from training.eval.retrieval import resolve_k
from training.eval.topk_sets import BLOCK_FLOATS, iter_rank_buckets

# Table 2's operating points: K = 150k, 200k, 250k of the paper's test candidates, the 0.6M box
# crops covering 5-30% of their image (App. B.2); evaluation takes K as these fractions.
PAPER_CANDIDATES = 600_000
PAPER_TOP_K = (150_000, 200_000, 250_000)
PAPER_TOP_K_FRACTIONS = tuple(k / PAPER_CANDIDATES for k in PAPER_TOP_K)
_ONE = torch.ones(1, 1, dtype=torch.int64)


@dataclass(frozen=True)
class HierarchicalResult:
    """Hierarchical retrieval at one Top-K: k as given, count (resolved), queries (with >= 1
    correct item), precision, recall (means over those queries) and ot (mean; None child ->
    parent, where a retrieved image has several labels)."""

    k: int | float
    count: int
    queries: int
    precision: float
    recall: float
    ot: float | None


def label_ot_distances(
    accepted: np.ndarray, gallery_label_counts: np.ndarray, found: np.ndarray
) -> np.ndarray:
    """1-D Wasserstein distance between the true and the retrieved label distribution per query.

    The bins of query q are the labels of its correct gallery items (``accepted[q]`` labels
    present in the gallery) in depth-first tree order (the code order of LabelIndex), at
    positions 0..n-1, then one ``others`` bin at n for retrieved items with a wrong label.
    Depth-first order puts a label next to its subtree, so moving mass between related labels
    costs little. Ground truth: the label histogram of all correct gallery items (others 0);
    retrieved: the label histogram of the retrieved items. Both are normalised and compared with
    scipy.stats.wasserstein_distance (unit spacing, so the value is in bins).

    Args:
        accepted: (Q, L) bool down(labels) of each query (Relevance.parent_to_child.matrix rows).
        gallery_label_counts: (L,) gallery items per label code.
        found: (Q, L) retrieved items per label code (a query's row sums to its K).

    Returns:
        (Q,) distances in [0, n]; NaN for a query with no correct item in the gallery.
    """
    truth = accepted * gallery_label_counts[None, :]
    present = truth > 0
    distances = np.full(len(found), np.nan)
    for q in np.flatnonzero(present.any(1)):
        places = np.arange(present[q].sum() + 1)
        retrieved = found[q, present[q]]
        others = found[q].sum() - retrieved.sum()
        distances[q] = wasserstein_distance(
            places, places, np.append(truth[q, present[q]], 0.0), np.append(retrieved, others)
        )
    return distances


# Rows of the rank-bucket block turned into int64 scatter indices at a time (32 MiB).
_SCATTER_ITEMS = 1 << 22


def _label_histograms(bucket: Tensor, codes: Tensor, levels: int, n_labels: int) -> np.ndarray:
    """(B, levels, L) items per label among each row's first ``counts[i]`` (rank buckets)."""
    per_bucket = torch.zeros(bucket.shape[0], (levels + 1) * n_labels, dtype=torch.int64)
    rows = max(1, _SCATTER_ITEMS // bucket.shape[1])
    for start in range(0, bucket.shape[0], rows):
        index = bucket[start : start + rows].long() * n_labels + codes[None, :]
        # One count per item: a broadcast 1, not a block of ones.
        per_bucket[start : start + rows].scatter_add_(1, index, _ONE.expand_as(index))
    return per_bucket.view(-1, levels + 1, n_labels)[:, :levels].cumsum(1).numpy()


def _hit_counts(bucket: Tensor, relevant: np.ndarray, levels: int) -> np.ndarray:
    """(B, levels) correct items among each row's first ``counts[i]``."""
    per_bucket = torch.zeros(bucket.shape[0], levels + 1, dtype=torch.int64)
    rows = max(1, _SCATTER_ITEMS // bucket.shape[1])
    for start in range(0, bucket.shape[0], rows):
        correct = torch.from_numpy(relevant[start : start + rows]).long()
        per_bucket[start : start + rows].scatter_add_(
            1, bucket[start : start + rows].long(), correct
        )
    return per_bucket[:, :levels].cumsum(1).numpy()


def hierarchical_retrieval(
    queries: Tensor,
    gallery: Tensor,
    relevance: Relevance,
    ks: Sequence[int | float],
    score: str,
    curv: float | Tensor | None = None,
    block_floats: int = BLOCK_FLOATS,
) -> list[HierarchicalResult]:
    """Hierarchical precision, recall and (parent -> child) OT distance at each Top-K.

    Precision@K = correct among the first K / K; recall@K = correct among the first K / all
    correct in the gallery; queries without a correct gallery item are left out of the means.

    Args:
        queries: (Q, D) embeddings, in relevance's query order; gallery: (G, D).
        relevance: the ground truth (Relevance.parent_to_child or child_to_parent).
        ks: Top-K as counts or fractions of the G candidates (see retrieval.resolve_k).
        score, curv: see retrieval.iter_topk; block_floats: see topk_sets.iter_rank_buckets.

    Returns:
        One HierarchicalResult per K, in the order of ``ks``.
    """
    n_items = gallery.shape[0]
    counts = [resolve_k(k, n_items) for k in ks]
    levels = sorted(set(counts))
    n_relevant = relevance.counts()
    with_ot = relevance.direction == PARENT_TO_CHILD
    hits = np.zeros((len(queries), len(levels)))
    ot = np.full((len(queries), len(levels)), np.nan)
    if with_ot:
        n_labels = relevance.matrix.shape[1]
        codes = torch.from_numpy(np.asarray(relevance.gallery_keys, dtype=np.int64))
        label_counts = np.bincount(relevance.gallery_keys, minlength=n_labels)
    for start, bucket in iter_rank_buckets(queries, gallery, levels, score, curv, block_floats):
        rows = np.arange(start, start + bucket.shape[0])
        if not with_ot:
            relevant = relevance.relevant(rows, np.arange(n_items))
            hits[rows] = _hit_counts(bucket.cpu(), relevant, len(levels))
            continue
        found = _label_histograms(bucket.cpu(), codes, len(levels), n_labels)
        accepted = relevance.matrix[relevance.query_keys[rows]]
        hits[rows] = (found * accepted[:, None, :]).sum(-1)
        for level in range(len(levels)):
            ot[rows, level] = label_ot_distances(accepted, label_counts, found[:, level])
    answerable = n_relevant > 0
    results = []
    for k, count in zip(ks, counts, strict=True):
        level = levels.index(count)
        correct = hits[answerable, level]
        results.append(
            HierarchicalResult(
                k=k,
                count=count,
                queries=int(answerable.sum()),
                precision=_mean(correct / count),
                recall=_mean(correct / n_relevant[answerable]),
                ot=_mean(ot[answerable, level]) if with_ot else None,
            )
        )
    return results


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
