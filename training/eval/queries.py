"""The evaluation's queries and candidates, chosen from the embedded crops as the paper does:
whole images are the parents; boxes covering 5-30% of their image are the children.

Labels are LabelIndex codes of the label tree; box labels the tree lacks are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from training.eval.embed import BOX, IMAGE
from training.eval.labels import LabelIndex

# The paper's child crops: boxes covering between 5% and 30% of their image (both inclusive).
CHILD_AREA = (0.05, 0.30)


@dataclass(frozen=True)
class EvalSet:
    """Rows of the crop table (CROPS, N rows) in the roles evaluation gives them.

    Attributes:
        labels: the label tree's codes.
        parents: (P,) rows of whole images; parent_labels (P, L) bool multi-hot of the tree
            labels of each image's kept boxes.
        children: (C,) rows of the child crops (area in [min, max], label in the tree);
            child_codes (C,) their label codes.
        parent_queries: (Qp,) sorted indices into parents, a seeded random subset.
        child_queries: (Qc,) sorted indices into children, a seeded random subset.
        boxes: (B,) rows of every box whose label is in the tree; box_codes (B,) their codes;
            box_tree_parent (B,) the row of each box's parent in its image's tree (the whole
            image, or the smallest enclosing accepted box): the entailment pairs of the crops.
        depth: (N,) label-tree depth of every crop: 0 for whole images (the root "scene"),
            -1 for a box whose label the tree lacks.
        unknown_labels: box labels missing from the tree, sorted.
    """

    labels: LabelIndex
    parents: np.ndarray
    parent_labels: np.ndarray
    children: np.ndarray
    child_codes: np.ndarray
    parent_queries: np.ndarray
    child_queries: np.ndarray
    boxes: np.ndarray
    box_codes: np.ndarray
    box_tree_parent: np.ndarray
    depth: np.ndarray
    unknown_labels: list[str]

    def entailment_pairs(
        self, max_pairs: int = 10_000, seed: int = 0, tries: int = 20
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Seeded entailment pairs of the crops and one unrelated partner for each.

        The pairs are (tree parent, box) edges of the per-image trees (box_tree_parent) whose
        parent is a whole image or a box with a tree label, at most ``max_pairs`` of them. The
        unrelated partner is a random box whose label is outside down(labels(parent)); pairs
        without one after ``tries`` draws are dropped.

        Returns:
            (P,) parent rows, (P,) child rows and (P,) unrelated rows of the crop table.
        """
        if not len(self.boxes):
            return (np.zeros(0, np.int64),) * 3
        rng = np.random.default_rng([seed, 3])
        image_of = np.full(len(self.depth), -1)
        image_of[self.parents] = np.arange(len(self.parents))
        code_of = np.full(len(self.depth), -1)
        code_of[self.boxes] = self.box_codes
        parent = self.box_tree_parent
        usable = np.flatnonzero((image_of[parent] >= 0) | (code_of[parent] >= 0))
        if len(usable) > max_pairs:
            usable = np.sort(rng.choice(usable, max_pairs, replace=False))
        parent, child = parent[usable], self.boxes[usable]
        images = image_of[parent] >= 0
        allowed = np.empty((len(parent), self.labels.size), dtype=bool)
        allowed[images] = self.labels.accepted(self.parent_labels[image_of[parent[images]]])
        one_hot = np.eye(self.labels.size, dtype=bool)[code_of[parent[~images]]]
        allowed[~images] = self.labels.accepted(one_hot)
        partner = np.full(len(parent), -1)
        for _ in range(tries):
            open_rows = np.flatnonzero(partner < 0)
            draw = rng.integers(len(self.boxes), size=len(open_rows))
            fine = ~allowed[open_rows, self.box_codes[draw]]
            partner[open_rows[fine]] = self.boxes[draw[fine]]
        kept = partner >= 0
        return parent[kept], child[kept], partner[kept]

    def counts(self) -> dict[str, int]:
        return {
            "images": len(self.parents),
            "boxes": len(self.boxes),
            "children": len(self.children),
            "parent_queries": len(self.parent_queries),
            "child_queries": len(self.child_queries),
            "labels_in_tree": self.labels.size,
            "boxes_with_labels_not_in_tree": int((self.depth < 0).sum()),
        }


def _subset(n: int, max_queries: int | None, seed: int, stream: int) -> np.ndarray:
    """Sorted seeded random subset of range(n) of at most max_queries items (None: all).

    Each role draws from its own stream, so capping one leaves the other's draw unchanged.
    """
    if max_queries is None or n <= max_queries:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, stream]).choice(n, max_queries, replace=False))


def tree_parent_rows(crops: pa.Table, boxes: np.ndarray) -> np.ndarray:
    """(B,) crop-table row of each box's parent in its image's tree (image_id, tree_parent).

    Raises ValueError when a parent is missing from the table.
    """
    ident = pc.binary_join_element_wise(crops.column("image_id"), crops.column("key"), "/")
    wanted = pc.binary_join_element_wise(
        crops.column("image_id").take(boxes), crops.column("tree_parent").take(boxes), "/"
    )
    rows = pc.index_in(wanted, value_set=ident.combine_chunks())
    if rows.null_count:
        raise ValueError("a box's tree parent (its image or a box) is missing from the crop table")
    return rows.to_numpy().astype(np.int64)


def build_eval_set(
    crops: pa.Table,
    labels: LabelIndex,
    child_area: tuple[float, float] = CHILD_AREA,
    max_queries: int | None = 10_000,
    seed: int = 0,
) -> EvalSet:
    """Parents, children and their seeded query subsets from an embedded crop table.

    Args:
        crops: training.eval.embed.CROPS rows.
        labels: codes of the label tree the ground truth comes from.
        child_area: inclusive [min, max] box area fraction of a child crop.
        max_queries: at most this many parent queries and this many child queries (None: all;
            the paper's 10,000 each); the candidates are never subsampled.
        seed: seed of the query subsets.
    """
    kind = crops.column("kind")
    parents = np.flatnonzero(pc.equal(kind, IMAGE).to_numpy(zero_copy_only=False))
    box_rows = np.flatnonzero(pc.equal(kind, BOX).to_numpy(zero_copy_only=False))
    box_labels = crops.column("label").take(box_rows)
    tree_labels = pa.array(labels.labels, pa.string())
    all_codes = pc.index_in(box_labels, value_set=tree_labels).fill_null(-1).to_numpy()
    all_codes = all_codes.astype(np.int64)
    known = all_codes >= 0
    boxes, box_codes = box_rows[known], all_codes[known]

    depth = np.zeros(crops.num_rows, np.int64)
    depth[box_rows] = np.where(known, labels.depth[np.maximum(all_codes, 0)], -1)

    # Multi-hot of each image's tree labels, from its flattened label list in one pass.
    image_labels = crops.column("labels").take(parents).combine_chunks()
    label_codes = pc.index_in(image_labels.flatten(), value_set=tree_labels)
    owner = pc.list_parent_indices(image_labels).to_numpy()
    in_tree = label_codes.is_valid().to_numpy(zero_copy_only=False)
    parent_labels = np.zeros((len(parents), labels.size), dtype=bool)
    parent_labels[owner[in_tree], label_codes.fill_null(0).to_numpy()[in_tree]] = True

    area = crops.column("area_fraction").to_numpy()[boxes]
    is_child = (area >= child_area[0]) & (area <= child_area[1])
    children, child_codes = boxes[is_child], box_codes[is_child]

    return EvalSet(
        labels=labels,
        parents=parents,
        parent_labels=parent_labels,
        children=children,
        child_codes=child_codes,
        parent_queries=_subset(len(parents), max_queries, seed, 0),
        child_queries=_subset(len(children), max_queries, seed, 1),
        boxes=boxes,
        box_codes=box_codes,
        box_tree_parent=tree_parent_rows(crops, boxes),
        depth=depth,
        unknown_labels=sorted(set(box_labels.filter(pa.array(~known)).to_pylist())),
    )
