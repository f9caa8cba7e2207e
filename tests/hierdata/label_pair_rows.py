"""Label-pair statistics written by hand for the stats, tree, parent-rule and ground-truth tests:
schemas.LABEL_PAIRS rows and LabelPairCounts."""

import pyarrow as pa

from hierdata import iou_histograms
from hierdata.stats import LabelPairCounts
from schemas.tables import LABEL_COUNTS, LABEL_PAIRS, PAIR_COUNTS, PAIR_IOU_COUNTS

PARENT_BOXES = 1000  # kept boxes of every label unless a row says otherwise


def pair(
    parent: str,
    child: str,
    frequency: int,
    proportion: float,
    accepted: bool = True,
    inside: int | None = None,
    child_boxes: int = PARENT_BOXES,
) -> dict:
    """One LABEL_PAIRS row: the display name of label "a" is "A"; children_with_parent (C boxes
    inside a P box) is `inside`, else the frequency; every IoU median is 0.1."""
    return {
        "parent_label": parent, "child_label": child, "parent_name": parent.upper(),
        "child_name": child.upper(), "frequency": frequency,
        "parents_with_child": round(proportion * PARENT_BOXES), "parent_boxes": PARENT_BOXES,
        "proportion": proportion,
        "children_with_parent": frequency if inside is None else inside,
        "child_boxes": child_boxes, "iou_median": 0.1, "near_duplicate_share": 0.0,
        "isa": False, "same_object": False, "accepted": accepted,
    }  # fmt: skip


def label_pairs(*rows: tuple | dict) -> pa.Table:
    """LABEL_PAIRS from pair() dicts or (parent, child, frequency, proportion[, accepted])."""
    return pa.Table.from_pylist(
        [row if isinstance(row, dict) else pair(*row) for row in rows], schema=LABEL_PAIRS
    )


def pair_counts(
    *rows: tuple[str, str, int, int] | tuple[str, str, int, int, int],
    labels: dict[str, int],
    iou: float = 0.1,
) -> LabelPairCounts:
    """LabelPairCounts from (parent, child, frequency, parents_with_child[,
    children_with_parent]) rows (children_with_parent defaults to parents_with_child) and kept
    boxes per label; every box pair of a row has IoU `iou` (one histogram bin)."""
    pairs, ious = [], []
    for parent, child, frequency, with_child, *with_parent in rows:
        pairs.append((parent, child, frequency, with_child, *(with_parent or [with_child])))
        ious.append((parent, child, int(iou_histograms.iou_bin([iou])[0]), frequency))
    return LabelPairCounts(
        pa.Table.from_pylist([dict(zip(PAIR_COUNTS.names, r, strict=True)) for r in pairs],
                             PAIR_COUNTS),
        pa.Table.from_pylist([{"label": k, "kept_boxes": v} for k, v in labels.items()],
                             LABEL_COUNTS),
        pa.Table.from_pylist([dict(zip(PAIR_IOU_COUNTS.names, r, strict=True)) for r in ious],
                             PAIR_IOU_COUNTS),
    )  # fmt: skip
