"""Retrieval metrics: same-class Top-k accuracy, hierarchical precision, recall and OT at Top-K,
and precision-recall curves over score thresholds, against the label tree's down(L).

Pure functions over retrieved indices are separate from the drivers that stream iter_topk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from torch import Tensor

from training.eval.labels import LabelIndex
from training.eval.retrieval import higher_is_better, iter_topk, pairwise_scores, resolve_k

PARENT_TO_CHILD, CHILD_TO_PARENT = "parent_to_child", "child_to_parent"
TOPK_ACCURACY_KS = (5, 10, 50, 100)


def label_hits(
    indices: np.ndarray, gallery_labels: np.ndarray, target_labels: np.ndarray
) -> np.ndarray:
    """Which retrieved items carry the query's target label.

    Args:
        indices: (Q, K) gallery indices, best first.
        gallery_labels: (G,) int label codes, or (G, L) bool multi-hot for multi-label items
            (whole images).
        target_labels: (Q,) int code each query should retrieve (e.g. its true pair partner's).

    Returns:
        (Q, K) bool.
    """
    if gallery_labels.ndim == 1:
        return gallery_labels[indices] == target_labels[:, None]
    return gallery_labels[indices, target_labels[:, None]]


def topk_accuracy(hits: np.ndarray, ks: Sequence[int] = TOPK_ACCURACY_KS) -> dict[int, float]:
    """Fraction of queries with at least one hit among their first k items, for each k.

    Args:
        hits: (Q, K) bool, best first; every k must be <= K.
    """
    if any(k > hits.shape[1] for k in ks):
        raise ValueError(f"ks {tuple(ks)} exceed the {hits.shape[1]} retrieved items per query")
    first = np.where(hits.any(1), hits.argmax(1), hits.shape[1])
    return {k: float((first < k).mean()) for k in ks}


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


def precision_recall_at_k(
    relevant: np.ndarray,
    n_relevant: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query precision and recall of the retrieved items.

    Args:
        relevant: (Q, K) bool, whether each retrieved item is a correct answer.
        n_relevant: (Q,) number of correct answers in the whole gallery.

    Returns:
        precision (Q,) = hits / K and recall (Q,) = hits / n_relevant; both NaN for a query
        with no correct answer in the gallery (left out of the means).
    """
    hits = relevant.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(n_relevant > 0, hits / n_relevant, np.nan)
    precision = np.where(n_relevant > 0, hits / relevant.shape[1], np.nan)
    return precision, recall


def label_ot_distances(
    accepted: np.ndarray, gallery_codes: np.ndarray, retrieved: np.ndarray
) -> np.ndarray:
    """1-D Wasserstein distance between the true and the retrieved label distribution per query.

    The bins of query q are the labels of its correct gallery items (``accepted[q]`` labels
    present in the gallery) in depth-first tree order (the code order of LabelIndex), at
    positions 0..n-1, then one ``others`` bin at n for retrieved items with a wrong label.
    Depth-first order puts a label next to its subtree, so moving mass between related labels
    costs little. Ground truth: the label histogram of all correct gallery items (others 0);
    retrieved: the label histogram of the K retrieved items. Both are normalised and compared
    with scipy.stats.wasserstein_distance (unit spacing, so the value is in bins).

    Args:
        accepted: (Q, L) bool down(labels) of each query (Relevance.parent_to_child.matrix rows).
        gallery_codes: (G,) int label code of each gallery item.
        retrieved: (Q, K) gallery indices.

    Returns:
        (Q,) distances in [0, n]; NaN for a query with no correct item in the gallery.
    """
    n_labels = accepted.shape[1]
    truth = accepted * np.bincount(gallery_codes, minlength=n_labels)[None, :]
    present = truth > 0
    position = np.cumsum(present, axis=1) - 1
    n_bins = present.sum(1)
    codes = gallery_codes[retrieved]
    rows = np.arange(len(retrieved))[:, None]
    bins = np.where(present[rows, codes], position[rows, codes], n_bins[:, None])
    found = np.zeros((len(retrieved), n_labels + 1))
    np.add.at(found, (np.broadcast_to(rows, bins.shape), bins), 1.0)
    distances = np.full(len(retrieved), np.nan)
    for q in np.flatnonzero(n_bins):
        places = np.arange(n_bins[q] + 1)
        true_weights = np.append(truth[q, present[q]], 0.0)
        distances[q] = wasserstein_distance(places, places, true_weights, found[q, : n_bins[q] + 1])
    return distances


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


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def hierarchical_retrieval(
    queries: Tensor,
    gallery: Tensor,
    relevance: Relevance,
    ks: Sequence[int | float],
    score: str,
    curv: float | Tensor | None = None,
    query_chunk: int = 256,
) -> list[HierarchicalResult]:
    """Hierarchical precision, recall and (parent -> child) OT distance at each Top-K.

    Args:
        queries: (Q, D) embeddings, in relevance's query order; gallery: (G, D).
        relevance: the ground truth (Relevance.parent_to_child or child_to_parent).
        ks: Top-K as counts or fractions of the G candidates (see retrieval.resolve_k).
        score, curv: see retrieval.iter_topk.

    Returns:
        One HierarchicalResult per K, in the order of ``ks``.
    """
    counts = [resolve_k(k, gallery.shape[0]) for k in ks]
    n_relevant = relevance.counts()
    with_ot = relevance.direction == PARENT_TO_CHILD
    per_k = {c: {"precision": [], "recall": [], "ot": []} for c in counts}
    for start, _, indices in iter_topk(queries, gallery, max(counts), score, curv, query_chunk):
        indices = indices.cpu().numpy()
        rows = np.arange(start, start + len(indices))
        relevant = relevance.relevant(rows, indices)
        for count in per_k:
            precision, recall = precision_recall_at_k(relevant[:, :count], n_relevant[rows])
            per_k[count]["precision"].append(precision)
            per_k[count]["recall"].append(recall)
            if with_ot:
                per_k[count]["ot"].append(
                    label_ot_distances(
                        relevance.matrix[rows], relevance.gallery_keys, indices[:, :count]
                    )
                )
    results = []
    for k, count in zip(ks, counts, strict=True):
        merged = {name: np.concatenate(parts) for name, parts in per_k[count].items() if parts}
        results.append(
            HierarchicalResult(
                k=k,
                count=count,
                queries=int((n_relevant > 0).sum()),
                precision=_nanmean(merged["precision"]),
                recall=_nanmean(merged["recall"]),
                ot=_nanmean(merged["ot"]) if with_ot else None,
            )
        )
    return results


def same_class_accuracy(
    queries: Tensor,
    gallery: Tensor,
    gallery_labels: np.ndarray,
    target_labels: np.ndarray,
    score: str,
    curv: float | Tensor | None = None,
    ks: Sequence[int] = TOPK_ACCURACY_KS,
    query_chunk: int = 256,
) -> dict[int, float]:
    """Top-k accuracy: a query scores at k when one of its first k items has its target label.

    Args:
        gallery_labels, target_labels: see label_hits. ks larger than G are dropped.
        score, curv: see retrieval.iter_topk.
    """
    ks = [k for k in ks if k <= gallery.shape[0]]
    if not ks:
        raise ValueError(f"every k exceeds the {gallery.shape[0]} gallery items")
    hits = [
        label_hits(
            indices.cpu().numpy(), gallery_labels, target_labels[start : start + len(indices)]
        )
        for start, _, indices in iter_topk(queries, gallery, max(ks), score, curv, query_chunk)
    ]
    return topk_accuracy(np.concatenate(hits), ks)


def default_thresholds(score: str) -> np.ndarray:
    """Angle thresholds every degree over [0, pi]; cosine every 0.01 over [-1, 1]."""
    if score == "cosine":
        return np.linspace(-1.0, 1.0, 201)
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
