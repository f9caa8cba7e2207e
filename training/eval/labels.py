"""Integer label codes for evaluation, read off the label tree in depth-first order.

Holds the relations the metrics need as arrays: the ground truth down(L) (the closure of the
label graph) as a matrix, and the display tree's depths and ancestors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from hierdata.trees import ROOT, down_sets


def depth_first_labels(tree: nx.DiGraph) -> list[str]:
    """The tree's labels (ROOT excluded) in depth-first preorder, siblings by label id.

    Every label is followed by its whole subtree, so labels close in this order are close in
    the tree: the order of the OT bins (see metrics.label_ot_distances).
    """
    root = tree.graph.get("root", ROOT)
    order = list(nx.dfs_preorder_nodes(tree, root, sort_neighbors=sorted))
    return [label for label in order if label != root]


@dataclass(frozen=True)
class LabelIndex:
    """Label codes 0..L-1 in depth_first_labels order, the ground truth and the tree relations.

    Attributes:
        labels: (L,) label ids; code i is labels[i].
        descendants: (L, L) bool, ``[i, j]`` True iff labels[j] is labels[i] or below it in the
            display tree: what depths, ancestors at a depth and tree distances are read from.
        depth: (L,) int, 1 for the children of ROOT.
        ground_truth: (L, L) bool, ``[i, j]`` True iff labels[j] is in down(labels[i]) (the
            label itself included), DESIGN "Ground truth": the closure of the label graph,
            which also holds the pairs the one-parent display tree leaves out.
    """

    labels: tuple[str, ...]
    descendants: np.ndarray
    depth: np.ndarray
    ground_truth: np.ndarray

    @classmethod
    def from_tree(
        cls, tree: nx.DiGraph, down: Mapping[str, Iterable[str]] | None = None
    ) -> LabelIndex:
        """Codes and relations of every label of a hierdata.trees label tree.

        Args:
            tree: the display tree (label_tree.json).
            down: the ground truth, label -> down(label) (hierdata.ground_truth.down_sets of
                label_closure.parquet); labels outside the tree are left out, a tree label
                missing from it counts as itself. None: the tree's own down-sets.
        """
        labels = tuple(depth_first_labels(tree))
        code = {label: i for i, label in enumerate(labels)}
        descendants = _relation(code, down_sets(tree))
        ground_truth = descendants if down is None else _relation(code, down)
        ground_truth = ground_truth | np.eye(len(labels), dtype=bool)  # each its own answer
        # A label's ancestors-or-self below ROOT are one per depth 1..depth(label).
        return cls(labels, descendants, descendants.sum(0), ground_truth)

    @property
    def size(self) -> int:
        return len(self.labels)

    def encode(self, labels: Iterable[str]) -> np.ndarray:
        """(N,) int64 codes; a label missing from the tree raises KeyError naming it."""
        code = {label: i for i, label in enumerate(self.labels)}
        try:
            return np.fromiter((code[label] for label in labels), dtype=np.int64)
        except KeyError as error:
            raise KeyError(f"label {error.args[0]!r} is not in the label tree") from None

    def multi_hot(self, label_sets: Sequence[Iterable[str]]) -> np.ndarray:
        """(N, L) bool, row n True at the codes of label_sets[n] (e.g. an image's box labels)."""
        rows = [self.encode(labels) for labels in label_sets]
        out = np.zeros((len(rows), self.size), dtype=bool)
        out[
            np.repeat(np.arange(len(rows)), [len(r) for r in rows]),
            np.concatenate(rows or [np.zeros(0, np.int64)]),
        ] = True
        return out

    def accepted(self, multi_hot: np.ndarray) -> np.ndarray:
        """(N, L) bool down(labels) per row: the labels a correct child may carry.

        DESIGN "Ground truth": a child crop of label y is correct for parent image I when
        ``y in down(labels(I))``, down read from the label graph's closure (ground_truth).
        """
        return (multi_hot.astype(np.int32) @ self.ground_truth.astype(np.int32)) > 0

    def at_depth(self, codes: np.ndarray, depth: int) -> np.ndarray:
        """Each label's ancestor at ``depth`` (itself when it is no deeper), same shape."""
        ancestor = self.descendants & (self.depth == depth)[:, None]
        mapped = np.where(ancestor.any(0), ancestor.argmax(0), np.arange(self.size))
        return mapped[codes]

    def tree_distance(self) -> np.ndarray:
        """(L, L) int edges on the tree path between two labels.

        ``depth(a) + depth(b) - 2 depth(lca)``, where depth(lca) is the number of shared
        ancestors-or-self below ROOT (they form one chain), so the lca comes from one matmul.
        """
        ancestors = self.descendants.T.astype(np.int64)
        shared = ancestors @ ancestors.T
        return self.depth[:, None] + self.depth[None, :] - 2 * shared


def _relation(code: Mapping[str, int], below: Mapping[str, Iterable[str]]) -> np.ndarray:
    """(L, L) bool ``[code[a], code[b]]`` for every b in below[a]; labels not coded are left out."""
    matrix = np.zeros((len(code), len(code)), dtype=bool)
    for label, members in below.items():
        if label in code:
            matrix[code[label], [code[m] for m in members if m in code]] = True
    return matrix
