"""Box geometry over arrays: areas, intersections, containment, IoU, and pairs within groups.

Boxes are normalised (xmin, xmax, ymin, ymax) rows, the Open Images order; areas are fractions.
"""

import numpy as np


def box_areas(xmin: np.ndarray, xmax: np.ndarray, ymin: np.ndarray, ymax: np.ndarray) -> np.ndarray:
    """Areas of boxes, (N,) each coordinate -> (N,) float64, as fractions of the image.

    Computed as (xmax - xmin) * (ymax - ymin), the exact formula the mining thresholds see.
    """
    xmin, xmax, ymin, ymax = (np.asarray(v, dtype=np.float64) for v in (xmin, xmax, ymin, ymax))
    return (xmax - xmin) * (ymax - ymin)


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(
            f"boxes must have shape (N, 4) as (xmin, xmax, ymin, ymax); got {boxes.shape}"
        )
    return boxes


def _areas(boxes: np.ndarray) -> np.ndarray:
    return box_areas(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])


def intersection_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area of a[k] ∩ b[k] for each row k (elementwise pairs, not all-against-all).

    Args:
        a, b: (N, 4) boxes as (xmin, xmax, ymin, ymax) rows, normalised.
    Returns:
        (N,) float64; 0 for boxes that are disjoint or only touch along an edge.
    """
    a, b = _as_boxes(a), _as_boxes(b)
    # Clip at 0: disjoint boxes give a negative overlap extent on at least one axis.
    width = np.clip(np.minimum(a[:, 1], b[:, 1]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 2], b[:, 2]), 0.0, None)
    return width * height


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    # A degenerate (zero-area) box contains nothing and overlaps nothing: 0, not NaN.
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def containment(child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Fraction of each child box that lies inside its parent: area(c ∩ p) / area(c).

    Args:
        child, parent: (N, 4) boxes as (xmin, xmax, ymin, ymax) rows, elementwise pairs.
    Returns:
        (N,) float64 in [0, 1]; 0 where the child has zero area.
    """
    child, parent = _as_boxes(child), _as_boxes(parent)
    return _safe_ratio(intersection_areas(child, parent), _areas(child))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of a[k] and b[k] for each row k.

    Args:
        a, b: (N, 4) boxes as (xmin, xmax, ymin, ymax) rows, elementwise pairs.
    Returns:
        (N,) float64 in [0, 1]; 0 where both boxes have zero area.
    """
    a, b = _as_boxes(a), _as_boxes(b)
    inter = intersection_areas(a, b)
    return _safe_ratio(inter, _areas(a) + _areas(b) - inter)


def pairs_within_groups(
    group_sizes: np.ndarray, *, ordered: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of distinct row indices inside each run of consecutive rows.

    Rows 0..sizes[0]-1 form group 0, the next sizes[1] rows group 1, and so on. With
    `ordered` (the default) a group of n rows gives all n * (n - 1) ordered pairs (i, j),
    i != j; with ordered=False it gives each unordered pair once, as i < j, n * (n - 1) / 2
    pairs (half the memory, for rules that orient a pair themselves). Groups of 0 or 1 rows
    give nothing.

    Args:
        group_sizes: (G,) non-negative integers.
        ordered: all ordered pairs if True, else only those with i < j.
    Returns:
        (i, j): two (P,) int64 arrays, ordered by i then j.
    """
    sizes = np.asarray(group_sizes, dtype=np.int64)
    if sizes.ndim != 1 or (sizes < 0).any():
        raise ValueError("group_sizes must be a 1-D array of non-negative integers")
    rows = np.arange(int(sizes.sum()), dtype=np.int64)
    group_starts = np.cumsum(sizes) - sizes
    # Each row pairs with a contiguous span of its group: all of it, or the rows after it.
    span_start = np.repeat(group_starts, sizes) if ordered else rows + 1
    span_length = (
        np.repeat(sizes, sizes) if ordered else np.repeat(group_starts + sizes, sizes) - span_start
    )
    i = np.repeat(rows, span_length)
    # j walks each row's span: position in the flat output minus where the row's pairs begin.
    first_pair = np.cumsum(span_length) - span_length
    j = np.arange(i.size, dtype=np.int64) - np.repeat(first_pair - span_start, span_length)
    if ordered:
        # The full span contains the row itself; drop the diagonal.
        off_diagonal = i != j
        i, j = i[off_diagonal], j[off_diagonal]
    return i, j
