"""How much a label pair's candidate boxes overlap: an additive IoU histogram per label pair and
the median and near-duplicate share read off it (label_pairs' iou_median, near_duplicate_share).
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.tables import IOU_BINS, PAIR_IOU_COUNTS

NEAR_DUPLICATE_IOU = 0.5  # a bin edge (bin 50), so the share is exact, not interpolated
_LABEL_PAIR = ["parent_label", "child_label"]
_SUMMARY = pa.schema(
    [
        pa.field("parent_label", pa.string(), nullable=False),
        pa.field("child_label", pa.string(), nullable=False),
        pa.field("iou_median", pa.float64(), nullable=False),
        pa.field("near_duplicate_share", pa.float64(), nullable=False),
    ]
)


def iou_bin(iou: np.ndarray) -> np.ndarray:
    """(N,) int32 bin of each IoU in [0, 1]: floor(IoU * IOU_BINS), IoU = 1 in the last bin."""
    return np.clip(np.floor(np.asarray(iou, np.float64) * IOU_BINS), 0, IOU_BINS - 1).astype(
        np.int32
    )


def iou_counts(candidates: pa.Table) -> pa.Table:
    """The IoU histogram of every label pair's box ⊃ box candidates.

    Args:
        candidates: schemas.PAIRS; rows of kind other than "box_box" are ignored.
    Returns:
        schemas.PAIR_IOU_COUNTS sorted by (parent_label, child_label, iou_bin), non-empty bins
        only. Counts of disjoint batches of images add up.
    """
    box_box = candidates.filter(pc.equal(candidates.column("kind"), "box_box"))
    binned = box_box.select(_LABEL_PAIR).append_column(
        "iou_bin", pa.array(iou_bin(box_box.column("iou").to_numpy()), pa.int32())
    )
    counts = binned.group_by([*_LABEL_PAIR, "iou_bin"]).aggregate([([], "count_all")])
    table = pa.table(
        [*(counts.column(name) for name in [*_LABEL_PAIR, "iou_bin"]), counts.column("count_all")],
        schema=PAIR_IOU_COUNTS,
    )
    return table.sort_by([(name, "ascending") for name in PAIR_IOU_COUNTS.names[:3]])


def summarise(iou_counts: pa.Table) -> pa.Table:
    """Median IoU and near-duplicate share of each label pair of a histogram table.

    Args:
        iou_counts: schemas.PAIR_IOU_COUNTS with one row per (label pair, bin) (summed).
    Returns:
        (parent_label, child_label, iou_median, near_duplicate_share) sorted by label pair.
        iou_median is the grouped-data median: in the bin where the running count reaches half
        the pairs, interpolated linearly as if the pairs were spread evenly over the bin (so it
        is within one bin width, 0.01, of the exact median). near_duplicate_share is the share
        of pairs with IoU >= NEAR_DUPLICATE_IOU (inclusive).
    """
    ordered = iou_counts.sort_by([(name, "ascending") for name in PAIR_IOU_COUNTS.names[:3]])
    if ordered.num_rows == 0:
        return _SUMMARY.empty_table()
    keys = pc.binary_join_element_wise(
        ordered.column("parent_label"), ordered.column("child_label"), "\x1f"
    ).to_numpy(zero_copy_only=False)
    bins = ordered.column("iou_bin").to_numpy().astype(np.float64)
    pairs = ordered.column("pairs").to_numpy().astype(np.float64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, keys.size]))
    totals = np.add.reduceat(pairs, starts)
    # Running count within each label pair: the global running count minus the pairs before it.
    before_pair = np.r_[0.0, np.cumsum(totals)[:-1]]
    running = np.cumsum(pairs) - before_pair[group]
    half = totals[group] / 2
    # The median's bin is the first of its pair whose running count reaches half the pairs.
    reaches = running >= half
    first = np.flatnonzero(reaches & np.r_[True, ~reaches[:-1] | (group[1:] != group[:-1])])
    below = running[first] - pairs[first]  # pairs in lower bins of the same label pair
    median = (bins[first] + (half[first] - below) / pairs[first]) / IOU_BINS
    near = np.bincount(group, weights=pairs * (bins >= NEAR_DUPLICATE_IOU * IOU_BINS))
    columns = [
        ordered.column("parent_label").take(pa.array(starts)),
        ordered.column("child_label").take(pa.array(starts)),
        pa.array(median, pa.float64()),
        pa.array(near / totals, pa.float64()),
    ]
    return pa.table(columns, schema=_SUMMARY)
