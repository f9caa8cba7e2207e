"""Pair mining: number the boxes of each image, then find image ⊃ box and box ⊃ box candidates.

Works on whole tables of many images at once: numpy over all box pairs, in blocks of ~1M pairs
that cut across images and inside one image alike, so a crowded image (10,000 boxes, 50M pairs)
costs no more memory at a time than a bucket of small ones.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hierdata import geometry
from schemas import BOXES, PAIRS, ROWS

_IMAGE_PARENT = -1  # parent_box of an image ⊃ box pair: the whole image
_COORDS = ("xmin", "xmax", "ymin", "ymax")
_MINING_COLUMNS = ["split", "image_id", "box_id", "label", *_COORDS, "is_group_of", "kept"]
_PAIRS_PER_BLOCK = 1 << 20  # unordered box pairs per block: ~8 MB per int64 pair array


def _require_columns(table: pa.Table, schema: pa.Schema, what: str) -> None:
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ValueError(f"{what} table lacks columns {missing}")


def _string_ranks(column: pa.ChunkedArray) -> np.ndarray:
    """(N,) int64: each value's rank among the distinct values, in byte-wise string order.

    Sorting integers is several times faster than sorting strings, and only the (few)
    distinct values need a string sort.
    """
    encoded = column.combine_chunks().dictionary_encode()
    rank_of_code = np.empty(len(encoded.dictionary), dtype=np.int64)
    rank_of_code[pc.array_sort_indices(encoded.dictionary).to_numpy()] = np.arange(
        len(encoded.dictionary)
    )
    return rank_of_code[encoded.indices.to_numpy()]


def _image_keys(table: pa.Table) -> np.ndarray:
    """(N,) int64 key per row that sorts like (split, image_id) and is equal within an image."""
    image_rank = _string_ranks(table.column("image_id"))
    # rank <= N - 1, so split_rank * N + image_rank <= N^2 fits int64 for any real table.
    return _string_ranks(table.column("split")) * max(table.num_rows, 1) + image_rank


def _run_lengths(sorted_keys: np.ndarray) -> np.ndarray:
    """(G,) lengths of the runs of equal values in a sorted (N,) array."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    run_starts = np.flatnonzero(np.diff(sorted_keys, prepend=sorted_keys[0] - 1))
    return np.diff(np.append(run_starts, sorted_keys.size))


def index_boxes(rows: pa.Table, min_box_area: float) -> pa.Table:
    """Number the boxes of every image and mark those big enough to mine.

    Args:
        rows: schemas.ROWS, validated rows of any number of images and splits, any order.
        min_box_area: boxes with area >= this fraction of the image are kept (inclusive).
    Returns:
        schemas.BOXES sorted by (split, image_id, file, line); box_id = 0..n-1 within each
        (split, image_id) in that order; area = (xmax - xmin) * (ymax - ymin), normalised.
    """
    _require_columns(rows, ROWS, "rows")
    rows = rows.select(ROWS.names)
    image_key = _image_keys(rows)
    order = np.lexsort(
        (rows.column("line").to_numpy(), _string_ranks(rows.column("file")), image_key)
    )
    # Readers emit file order, which Open Images sorts by ImageID: skip the costly string take.
    if np.any(order != np.arange(order.size)):
        rows, image_key = rows.take(order), image_key[order]
    run_lengths = _run_lengths(image_key)
    run_starts = np.repeat(np.cumsum(run_lengths) - run_lengths, run_lengths)
    box_id = np.arange(rows.num_rows, dtype=np.int64) - run_starts
    area = geometry.box_areas(*(rows.column(name).to_numpy() for name in _COORDS))
    columns = {name: rows.column(name) for name in ROWS.names}
    columns["box_id"] = pa.array(box_id.astype(np.int32), pa.int32())
    columns["area"] = pa.array(area, pa.float64())
    columns["kept"] = pa.array(area >= min_box_area, pa.bool_())
    return pa.table([columns[name] for name in BOXES.names], schema=BOXES)


def _pairs_table(
    boxes: pa.Table,
    kind: str,
    parent: np.ndarray | None,
    child: np.ndarray,
    containment: np.ndarray,
    iou: np.ndarray,
) -> pa.Table:
    """schemas.PAIRS from row indices into `boxes`; parent None means the whole image."""
    child_rows = pa.array(child, pa.int64())
    n = len(child)
    if parent is None:
        parent_box = pa.array(np.full(n, _IMAGE_PARENT, dtype=np.int32), pa.int32())
        parent_label = pa.nulls(n, pa.string())
    else:
        parent_rows = pa.array(parent, pa.int64())
        parent_box = boxes.column("box_id").take(parent_rows)
        parent_label = boxes.column("label").take(parent_rows)
    columns = [
        boxes.column("split").take(child_rows),
        boxes.column("image_id").take(child_rows),
        pa.repeat(pa.scalar(kind, pa.string()), n),
        parent_box,
        boxes.column("box_id").take(child_rows),
        parent_label,
        boxes.column("label").take(child_rows),
        pa.array(containment, pa.float64()),
        pa.array(iou, pa.float64()),
    ]
    return pa.table(columns, schema=PAIRS)


def _row_blocks(pairs_per_row: np.ndarray, max_pairs: int) -> list[tuple[int, int]]:
    """Split consecutive rows into [first, stop) ranges of about max_pairs pairs each.

    Rows are never split, so a block holds at most max_pairs plus one row's pairs (fewer than
    the boxes of one image); a crowded image spans many blocks.
    """
    pairs_before = np.concatenate([[0], np.cumsum(pairs_per_row)])
    edges = np.searchsorted(pairs_before, np.arange(0, pairs_before[-1], max_pairs), "right") - 1
    edges = np.unique(np.append(edges, pairs_per_row.size))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _pairs_of_rows(
    span_start: np.ndarray, span_length: np.ndarray, first: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) for rows first..stop-1, each paired with the rows of its span [start, start+len)."""
    rows = np.arange(first, stop, dtype=np.int64)
    length = span_length[first:stop]
    i = np.repeat(rows, length)
    # j walks each row's span: position in the block's output minus where the row's pairs begin.
    first_pair = np.cumsum(length) - length
    j = np.arange(i.size, dtype=np.int64) - np.repeat(first_pair - span_start[first:stop], length)
    return i, j


def _box_box_rule(
    a: np.ndarray,
    b: np.ndarray,
    boxes: dict[str, np.ndarray],
    containment: float,
    duplicate_iou: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The DESIGN box ⊃ box rule on unordered pairs (a, b) of boxes of the same image.

    Args:
        a, b: (P,) indices into the (N,) arrays of `boxes`: coords (N, 4), area, label_code,
            is_group (bool).
    Returns:
        (parent, child, containment, iou), each (Q,), for the Q pairs that pass, in input order.
    """
    area, label_code = boxes["area"], boxes["label_code"]
    # The cheap rules first, so the geometry runs only on pairs that can still pass:
    # equal areas (strict rule) and equal labels never pair, whichever box is the parent.
    possible = (area[a] != area[b]) & (label_code[a] != label_code[b])
    a, b = a[possible], b[possible]
    a_larger = area[a] > area[b]
    parent, child = np.where(a_larger, a, b), np.where(a_larger, b, a)
    child_not_group = ~boxes["is_group"][child]
    parent, child = parent[child_not_group], child[child_not_group]
    coords = boxes["coords"]
    inside = geometry.containment(coords[child], coords[parent])
    contained = inside >= containment
    parent, child, inside = parent[contained], child[contained], inside[contained]
    overlap = geometry.iou(coords[parent], coords[child])
    distinct = overlap < duplicate_iou
    return parent[distinct], child[distinct], inside[distinct], overlap[distinct]


def mine_pairs(
    boxes: pa.Table, containment: float = 0.8, duplicate_iou: float = 0.9
) -> tuple[pa.Table, pa.Table]:
    """Image ⊃ box pairs and box ⊃ box candidates of every image in `boxes`.

    A child c and parent p of the same image form a candidate when (DESIGN, "Box ⊃ box"):
    area(c ∩ p) / area(c) >= containment (inclusive), area(p) > area(c) (strict),
    IoU(p, c) < duplicate_iou (strict, so a value above 1 disables the duplicate rule),
    label(p) != label(c), and c is not IsGroupOf (is_group_of == 1; unknown -1 is not a
    group). Parents may be group boxes. Only kept boxes take part.

    Args:
        boxes: schemas.BOXES of any number of images, in any order (index_boxes sorts them).
        containment: fraction of the child's area that must lie inside the parent, in [0, 1].
        duplicate_iou: IoU at or above which two boxes are one object under two labels.
    Returns:
        (image_box, candidates), both schemas.PAIRS sorted by
        (split, image_id, parent_box, child_box). image_box has one row per kept box with
        parent_box -1, parent_label null, containment 1.0 and iou = box area (IoU with the
        whole image); candidates have kind "box_box".
    """
    if not 0.0 <= containment <= 1.0:
        raise ValueError(f"containment must lie in [0, 1]; got {containment}")
    _require_columns(boxes, BOXES, "boxes")
    boxes = boxes.select(_MINING_COLUMNS).combine_chunks()
    image_key = _image_keys(boxes)
    box_id = boxes.column("box_id").to_numpy()
    # Kept rows of the table in (split, image_id, box_id) order: the output order.
    kept = np.flatnonzero(boxes.column("kept").to_numpy())
    rows = kept[np.lexsort((box_id[kept], image_key[kept]))]
    coords = np.column_stack([boxes.column(name).to_numpy()[rows] for name in _COORDS])
    coords = coords.reshape(rows.size, 4)
    area = geometry.box_areas(*coords.T)
    image_box = _pairs_table(boxes, "image_box", None, rows, np.ones(rows.size), area)

    label_code = boxes.column("label").combine_chunks().dictionary_encode().indices.to_numpy()
    kept_boxes = {
        "coords": coords,
        "area": area,
        "label_code": label_code[rows],
        "is_group": boxes.column("is_group_of").to_numpy()[rows] == 1,
    }
    group_sizes = _run_lengths(image_key[rows])
    # The strict area rule orients each unordered pair (the larger box is the parent), so half
    # the ordered pairs never need to exist: position p pairs with p+1 .. the end of its image.
    group_ends = np.repeat(np.cumsum(group_sizes), group_sizes)
    span_start = np.arange(rows.size, dtype=np.int64) + 1
    span_length = group_ends - span_start
    no_pairs = np.zeros(0, dtype=np.int64)
    found = [(no_pairs, no_pairs, np.zeros(0), np.zeros(0))]
    # Blocks of rows bound the memory of the pair arrays (sum of n^2 over a whole table, or
    # over one crowded image, would be gigabytes) and keep them small enough to be reused.
    for first, stop in _row_blocks(span_length, _PAIRS_PER_BLOCK):
        a, b = _pairs_of_rows(span_start, span_length, first, stop)
        found.append(_box_box_rule(a, b, kept_boxes, containment, duplicate_iou))
    parent, child, inside, overlap = (
        np.concatenate([block[k] for block in found]) for k in range(4)
    )
    # Positions follow (split, image_id, box_id), so sorting them sorts the output.
    order = np.lexsort((child, parent))
    candidates = _pairs_table(
        boxes, "box_box", rows[parent[order]], rows[child[order]], inside[order], overlap[order]
    )
    return image_box, candidates
