"""HierNet-style hierarchy clustering metrics: Ward clustering of crop embeddings cut at every
depth of the label tree, scored by clustering accuracy (Hungarian matching), AMI, purity and
(optionally, through POT) HHOT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from training.eval.labels import LabelIndex


def purity(truth: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of items whose cluster's majority label is their own label.

    ``sum_k max_c |cluster k with label c| / N``; 1 for a clustering that never mixes labels.
    """
    return float(contingency_matrix(truth, clusters).max(0).sum() / len(truth))


def clustering_accuracy(truth: np.ndarray, clusters: np.ndarray) -> float:
    """HierNet's clustering accuracy: the fraction of items whose cluster is matched to their
    label by the best one-to-one matching of clusters to labels (Hungarian, scipy's
    linear_sum_assignment); clusters or labels left unmatched count as wrong.

    ``max_{matching m} sum_k |cluster k with label m(k)| / N``; 1 for a perfect clustering.
    """
    table = contingency_matrix(truth, clusters)
    rows, columns = linear_sum_assignment(table, maximize=True)
    return float(table[rows, columns].sum() / len(truth))


def _require_pot():
    try:
        import ot
    except ImportError:
        raise ImportError(
            "HHOT needs the POT package (import name 'ot'): pip install pot; "
            "or run the clustering metrics with hhot=False"
        ) from None
    return ot


def hhot(truth: np.ndarray, clusters: np.ndarray, tree_distance: np.ndarray) -> float:
    """Hierarchy-aware optimal transport cost between a clustering and the true labels.

    Cluster k carries mass |k| / N, label c mass |c| / N; moving cluster k onto label c costs
    the mean tree distance (edges) from the labels of k's members to c. The exact OT cost
    (``ot.emd2``) is 0 iff every cluster is pure, and grows with how far apart in the tree the
    labels mixed in one cluster are, so confusing siblings costs less than confusing branches.
    (Our definition; HierNet's HHOT reference code was not available to compare.)

    Args:
        truth: (N,) int label codes; clusters: (N,) cluster ids.
        tree_distance: (L, L) edges between labels (LabelIndex.tree_distance).

    Raises:
        ImportError with a clear message when POT is not installed.
    """
    ot = _require_pot()
    labels, truth_index = np.unique(truth, return_inverse=True)
    _, cluster_index = np.unique(clusters, return_inverse=True)
    table = contingency_matrix(cluster_index, truth_index).astype(np.float64)  # (K, C)
    sizes = table.sum(1)
    cost = (table @ tree_distance[np.ix_(labels, labels)]) / sizes[:, None]
    return float(ot.emd2(sizes / sizes.sum(), table.sum(0) / sizes.sum(), cost))


def ward_linkage(embeddings: np.ndarray) -> np.ndarray:
    """scipy Ward linkage matrix of (N, D) vectors (Euclidean; O(N^2) memory)."""
    return linkage(np.asarray(embeddings, dtype=np.float64), method="ward")


@dataclass(frozen=True)
class ClusteringScore:
    """Ward clustering cut at one tree depth: its cluster count, items, clustering accuracy,
    AMI, purity and HHOT (None unless computed)."""

    depth: int
    clusters: int
    items: int
    accuracy: float
    ami: float
    purity: float
    hhot: float | None


def hierarchy_clustering_scores(
    embeddings: np.ndarray,
    codes: np.ndarray,
    labels: LabelIndex,
    with_hhot: bool = False,
    max_items: int | None = 10_000,
    seed: int = 0,
) -> list[ClusteringScore]:
    """Ward clustering cut at each depth of the label tree, scored against that depth's labels.

    At depth d every item's label is mapped to its ancestor at depth d (labels no deeper keep
    their own), and the Ward tree is cut (``maxclust``) into as many clusters as there are
    distinct mapped labels among the items, so a perfect embedding can score 1.

    Args:
        embeddings: (N, D) vectors to cluster (Euclidean Ward: pass tangent-space or space
            components as the caller sees fit).
        codes: (N,) int LabelIndex codes of the items.
        labels: the label tree's codes.
        with_hhot: also compute hhot (needs POT).
        max_items: Ward needs O(N^2) memory; above this many items a seeded random subset is
            clustered. None keeps all.
        seed: seed of that subset.

    Returns:
        One ClusteringScore per depth 1..max depth present (hhot None unless with_hhot).
    """
    if with_hhot:
        _require_pot()
    embeddings, codes = np.asarray(embeddings), np.asarray(codes)
    if max_items is not None and len(codes) > max_items:
        keep = np.sort(np.random.default_rng(seed).choice(len(codes), max_items, replace=False))
        embeddings, codes = embeddings[keep], codes[keep]
    tree = ward_linkage(embeddings)
    distance = labels.tree_distance() if with_hhot else None
    results = []
    for depth in range(1, int(labels.depth[codes].max()) + 1):
        truth = labels.at_depth(codes, depth)
        n_clusters = len(np.unique(truth))
        clusters = fcluster(tree, t=n_clusters, criterion="maxclust")
        results.append(
            ClusteringScore(
                depth=depth,
                clusters=n_clusters,
                items=len(codes),
                accuracy=clustering_accuracy(truth, clusters),
                ami=float(adjusted_mutual_info_score(truth, clusters)),
                purity=purity(truth, clusters),
                hhot=hhot(truth, clusters, distance) if with_hhot else None,
            )
        )
    return results
