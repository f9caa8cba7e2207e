"""Retrieval metrics: the ground truth as a relevance relation, same-class precision@K and hit@K,
and precision-recall curves over score thresholds, against the label tree's down(L).

Hierarchical retrieval at large Top-K is training.eval.hierarchical. Pure functions over
retrieved indices are separate from the drivers that stream iter_topk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from training.eval.labels import LabelIndex
from training.eval.retrieval import higher_is_better, iter_topk, pairwise_scores

PARENT_TO_CHILD, CHILD_TO_PARENT = "parent_to_child", "child_to_parent"
# Table 1's same-class Top-K.
SAME_CLASS_KS = (5, 10, 50, 100)


def label_hits(
    indices: np.ndarray, gallery_labels: np.ndarray, query_labels: np.ndarray
) -> np.ndarray:
    """Which retrieved items share a class with their query.

    Args:
        indices: (Q, K) gallery indices, best first.
        gallery_labels: (G,) int label codes, or (G, L) bool multi-hot for whole images.
        query_labels: (Q,) int codes, or (Q, L) bool multi-hot for whole images (then the
            gallery holds single-label crops).

    Returns:
        (Q, K) bool: child -> parent, the retrieved image holds the query crop's class;
        parent -> child, the retrieved crop's class is among the query image's classes.
    """
    if query_labels.ndim == 2:
        return query_labels[np.arange(len(indices))[:, None], gallery_labels[indices]]
    if gallery_labels.ndim == 1:
        return gallery_labels[indices] == query_labels[:, None]
    return gallery_labels[indices, query_labels[:, None]]


def answerable(gallery_labels: np.ndarray, query_labels: np.ndarray) -> np.ndarray:
    """(Q,) bool: queries with at least one same-class item in the gallery (see label_hits)."""
    if gallery_labels.ndim == 2:
        present = gallery_labels.any(0)
    elif query_labels.ndim == 2:
        present = np.bincount(gallery_labels, minlength=query_labels.shape[1]) > 0
    else:
        present = np.bincount(gallery_labels, minlength=int(query_labels.max()) + 1) > 0
    if query_labels.ndim == 2:
        return (query_labels & present[None, : query_labels.shape[1]]).any(1)
    return present[query_labels]


def precision_at_k(hits: np.ndarray, ks: Sequence[int] = SAME_CLASS_KS) -> dict[int, float]:
    """The paper's same-class Top-K: mean over queries of the fraction of the first k that hit.

    Args:
        hits: (Q, K) bool, best first; every k must be <= K.
    """
    _check_ks(hits, ks)
    return {k: float(hits[:, :k].mean(1).mean()) for k in ks}


def hit_at_k(hits: np.ndarray, ks: Sequence[int] = SAME_CLASS_KS) -> dict[int, float]:
    """Fraction of queries with at least one hit among their first k items, for each k."""
    _check_ks(hits, ks)
    first = np.where(hits.any(1), hits.argmax(1), hits.shape[1])
    return {k: float((first < k).mean()) for k in ks}


def _check_ks(hits: np.ndarray, ks: Sequence[int]) -> None:
    if any(k > hits.shape[1] for k in ks):
        raise ValueError(f"ks {tuple(ks)} exceed the {hits.shape[1]} retrieved items per query")


@dataclass(frozen=True)
class SameClassScores:
    """Same-class retrieval of one direction and score: queries (those with a same-class
    candidate), precision@k and hit@k (dicts k -> value)."""

    queries: int
    precision: dict[int, float]
    hit: dict[int, float]


def same_class_retrieval(
    queries: Tensor,
    gallery: Tensor,
    gallery_labels: np.ndarray,
    query_labels: np.ndarray,
    score: str,
    curv: float | Tensor | None = None,
    ks: Sequence[int] = SAME_CLASS_KS,
    query_chunk: int = 256,
) -> SameClassScores:
    """Same-class precision@k (the paper's Table 1) and hit@k, over the queries that have a
    same-class candidate at all.

    Args:
        gallery_labels, query_labels: see label_hits. ks larger than G are dropped.
        score, curv: see retrieval.iter_topk.
    """
    ks = [k for k in ks if k <= gallery.shape[0]]
    if not ks:
        raise ValueError(f"every k exceeds the {gallery.shape[0]} gallery items")
    keep = answerable(gallery_labels, query_labels)
    if not keep.any():
        return SameClassScores(0, dict.fromkeys(ks, float("nan")), dict.fromkeys(ks, float("nan")))
    queries, query_labels = queries[torch.from_numpy(keep)], query_labels[keep]
    hits = np.concatenate(
        [
            label_hits(
                indices.cpu().numpy(), gallery_labels, query_labels[start : start + len(indices)]
            )
            for start, _, indices in iter_topk(queries, gallery, max(ks), score, curv, query_chunk)
        ]
    )
    return SameClassScores(len(hits), precision_at_k(hits, ks), hit_at_k(hits, ks))


@dataclass(frozen=True)
class Relevance:
    """Ground truth of a retrieval: ``relevant[q, g] = matrix[query_keys[q], gallery_keys[g]]``.

    Build it with parent_to_child or child_to_parent; the label-level matrix keeps it (Q, L) or
    (L, G) instead of (Q, G).
    """

    matrix: np.ndarray
    query_keys: np.ndarray
    gallery_keys: np.ndarray
    direction: str

    @classmethod
    def parent_to_child(
        cls, labels: LabelIndex, parent_labels: np.ndarray, child_codes: np.ndarray
    ) -> Relevance:
        """Queries are parents (images), gallery items children (crops).

        Args:
            labels: the label tree's codes.
            parent_labels: (Q, L) bool multi-hot labels of each parent image.
            child_codes: (G,) int label code of each child crop.
        """
        accepted = labels.accepted(parent_labels)
        return cls(accepted, np.arange(len(accepted)), np.asarray(child_codes), PARENT_TO_CHILD)

    @classmethod
    def child_to_parent(
        cls, labels: LabelIndex, child_codes: np.ndarray, parent_labels: np.ndarray
    ) -> Relevance:
        """Queries are children (crops), gallery items parents: the same relation read backwards.

        Args:
            labels: the label tree's codes.
            child_codes: (Q,) int label code of each child crop.
            parent_labels: (G, L) bool multi-hot labels of each parent image.
        """
        accepted = labels.accepted(parent_labels)
        return cls(accepted.T, np.asarray(child_codes), np.arange(len(accepted)), CHILD_TO_PARENT)

    def relevant(self, query_rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(n, K) bool for retrieved items (n, K) of queries (n,), or (n, Gc) for items (Gc,)."""
        return self.matrix[self.query_keys[query_rows][:, None], self.gallery_keys[items]]

    def counts(self) -> np.ndarray:
        """(Q,) int64 number of relevant gallery items of each query."""
        per_key = np.bincount(self.gallery_keys, minlength=self.matrix.shape[1])
        return self.matrix[self.query_keys].astype(np.int64) @ per_key


def default_thresholds(score: str) -> np.ndarray:
    """The paper's Fig. 5 ranges: cosine every 0.01 over [0, 1]; angles every degree over
    [0, pi], the whole range of alpha and beta (the paper's angle endpoints were lost from the
    text we have; the full range holds them)."""
    if score == "cosine":
        return np.linspace(0.0, 1.0, 101)
    if score.startswith("angle"):
        return np.linspace(0.0, np.pi, 181)
    raise ValueError(f"give explicit thresholds for the {score!r} score")


@dataclass(frozen=True)
class PrCurve:
    """A sampled precision-recall curve: thresholds (T,) ascending, precision (T,) (NaN where
    nothing is retrieved), recall (T,), and retrieved and true_positives (T,) pair counts."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    retrieved: np.ndarray
    true_positives: np.ndarray


def precision_recall_curve(
    queries: Tensor,
    gallery: Tensor,
    relevance: Relevance,
    score: str,
    curv: float | Tensor | None = None,
    thresholds: np.ndarray | None = None,
    query_chunk: int = 256,
    gallery_chunk: int = 65_536,
) -> PrCurve:
    """Precision and recall over all (query, item) pairs when "retrieved" means past a threshold.

    A pair is retrieved at threshold t when its score is >= t (<= t for "distance"): angle
    thresholds for tuned models, cosine ones for zero-shot. Scores are exact
    (retrieval.pairwise_scores), counted per block into threshold bins, so memory stays at one
    (query_chunk, gallery_chunk) block.

    Returns:
        The curve at every threshold.
    """
    thresholds = np.sort(default_thresholds(score) if thresholds is None else thresholds)
    edges = torch.as_tensor(thresholds, dtype=torch.float64)
    higher = higher_is_better(score)
    every, correct = torch.zeros(len(edges) + 1), torch.zeros(len(edges) + 1)
    for start in range(0, queries.shape[0], query_chunk):
        rows = np.arange(start, min(start + query_chunk, queries.shape[0]))
        for lo in range(0, gallery.shape[0], gallery_chunk):
            items = np.arange(lo, min(lo + gallery_chunk, gallery.shape[0]))
            scores = pairwise_scores(queries[rows], gallery[items], score, curv)
            # Bin b holds the scores with b thresholds <= s (< s when lower is better).
            bins = torch.searchsorted(edges, scores.double().cpu().flatten(), right=higher)
            relevant = torch.from_numpy(relevance.relevant(rows, items).ravel())
            every += torch.bincount(bins, minlength=len(edges) + 1)
            correct += torch.bincount(bins[relevant], minlength=len(edges) + 1)
    every, correct = every.double().numpy(), correct.double().numpy()
    if higher:  # s >= t_i  <=>  bin >= i + 1
        retrieved, positives = every[::-1].cumsum()[::-1][1:], correct[::-1].cumsum()[::-1][1:]
    else:  # s <= t_i  <=>  bin <= i
        retrieved, positives = every.cumsum()[:-1], correct.cumsum()[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(retrieved > 0, positives / retrieved, np.nan)
        recall = positives / correct.sum() if correct.sum() else np.full(len(edges), np.nan)
    return PrCurve(thresholds, precision, recall, retrieved, positives)
