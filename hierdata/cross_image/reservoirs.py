"""Per-label reservoirs of cross-image boxes (DESIGN "Rules", Cross-image): a bottom-k sample
per (split, label) that Beam can build in any bundling and merge in any order.

For each (split, label) the reservoir is a bottom-k sample: every eligible box (kept and not
IsGroupOf == 1: a group crop shows several objects, not "a box of label y"; unknown -1 counts as
a single object) gets priority = a stable 64-bit hash of (seed, split, label, image_id, box_id),
and the reservoir holds the `pool` boxes with the smallest priorities (64-bit ties broken by
image_id, then box_id). Since the priority depends on the box alone, merging two reservoirs is
the bottom-k of their union, and the result is the same for any bundling of the boxes and any
merge order (a Beam CombinePerKey). The strings are hashed once per distinct value with blake2b
(8-byte digest), and the per-box combination is a chain of SplitMix64 finalisers over numpy
uint64 arrays: no per-box Python loop, no dependence on Python's hash().

Size. Open Images has 600 labels; pool 1000 gives at most 600k entries per split. In memory an
entry takes 8 (priority) + 4 * 16 (image_id, numpy unicode, 16-character Open Images ids)
+ 4 (box_id) + 32 (coordinates) = 108 bytes: about 65 MB per split, 200 MB for train,
validation and test together; as an Arrow table (reservoirs_to_table: UTF-8 strings, split
and label repeated per row) about 85 bytes an entry, 51 MB per split. Either fits a Dataflow
worker's memory as a side input.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hierdata.cross_image.primitives import (
    check_count,
    rank_in_run,
    ranks,
    require_columns,
    run_starts,
    seed_state,
    splitmix64,
    string_hashes,
)

_COORDS = ("xmin", "xmax", "ymin", "ymax")
_PRIORITY_DOMAIN = "cross-image reservoir"  # seed domain: independent of the draws' stream

# One reservoir entry per row; reservoirs_to_table / reservoirs_from_table ship them compactly.
RESERVOIRS = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("priority", pa.uint64(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("box_id", pa.int32(), nullable=False),
        *(pa.field(name, pa.float64(), nullable=False) for name in _COORDS),
    ]
)


@dataclass(frozen=True, eq=False)
class Reservoir:
    """The bottom-`pool` boxes of one (split, label); arrays (k,), sorted by priority ascending.

    image_id is numpy unicode, box_id int32, priority uint64, coordinates float64 normalised
    to [0, 1] (copied from BOXES, for the scene sample's metadata).
    """

    split: str
    label: str
    priority: np.ndarray
    image_id: np.ndarray
    box_id: np.ndarray
    xmin: np.ndarray
    xmax: np.ndarray
    ymin: np.ndarray
    ymax: np.ndarray

    def __len__(self) -> int:
        return int(self.priority.size)


def _bottom_k(
    group: np.ndarray, priority: np.ndarray, image_id: pa.Array, box_id: np.ndarray, k: int
) -> np.ndarray:
    """Row indices of the k smallest (priority, image_id, box_id) rows of each group.

    Args:
        group: (N,) int64; priority: (N,) uint64; image_id: (N,) strings; box_id: (N,).
    Returns:
        (M,) int64 row indices in (group, priority, image_id, box_id) order.
    """
    if k <= 0 or group.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((priority, group))
    sorted_group, sorted_priority = group[order], priority[order]
    run_id = np.cumsum(run_starts(sorted_group)) - 1
    # The k-th smallest priority bounds each group; rows tied with it stay candidates.
    bound = np.full(run_id[-1] + 1, np.iinfo(np.uint64).max, dtype=np.uint64)
    at_k = rank_in_run(sorted_group) == k - 1
    bound[run_id[at_k]] = sorted_priority[at_k]
    candidates = order[sorted_priority <= bound[run_id]]
    # The exact total order, image_id included, sorts only those few candidates.
    keys = pa.table(
        {
            "group": group[candidates],
            "priority": priority[candidates],
            "image_id": image_id.take(pa.array(candidates)),
            "box_id": box_id[candidates],
        }
    )
    exact = candidates[pc.sort_indices(keys, [(n, "ascending") for n in keys.column_names])]
    return exact[rank_in_run(group[exact]) < k]


def _reservoirs_of_sorted(table: pa.Table) -> list[Reservoir]:
    """One Reservoir per (split, label) run of RESERVOIRS rows sorted by (split, label, ...)."""
    table = table.combine_chunks()
    split_rank, splits = ranks(table.column("split"))
    label_rank, labels = ranks(table.column("label"))
    runs = np.flatnonzero(run_starts(split_rank * max(len(labels), 1) + label_rank))
    bounds = np.append(runs, table.num_rows).tolist()
    image_id = np.asarray(table.column("image_id").to_numpy(zero_copy_only=False), dtype=str)
    arrays = {n: table.column(n).to_numpy() for n in ("priority", "box_id", *_COORDS)}
    splits, labels = splits.to_pylist(), labels.to_pylist()
    return [
        Reservoir(
            splits[split_rank[a]],
            labels[label_rank[a]],
            arrays["priority"][a:b],
            image_id[a:b],
            arrays["box_id"][a:b],
            *(arrays[n][a:b] for n in _COORDS),
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def bucket_reservoirs(boxes: pa.Table, pool: int, seed: int) -> list[Reservoir]:
    """The reservoir of every (split, label) among the eligible boxes of `boxes`.

    Args:
        boxes: schemas.BOXES, any bundle of rows (images may be split across bundles).
            Eligible: kept and is_group_of != 1.
        pool: reservoir size (--cross_image_pool); a label with fewer eligible boxes keeps all.
        seed: --seed.
    Returns:
        One Reservoir per (split, label) with an eligible box, sorted by (split, label).
    """
    check_count("pool", pool)
    require_columns(
        boxes, ["is_group_of", "kept", *RESERVOIRS.names[:2], *RESERVOIRS.names[3:]], "boxes"
    )
    eligible = pc.and_(boxes.column("kept"), pc.not_equal(boxes.column("is_group_of"), 1))
    table = boxes.filter(eligible).select(RESERVOIRS.names[:2] + RESERVOIRS.names[3:])
    table = table.combine_chunks()
    split_rank, splits = ranks(table.column("split"))
    label_rank, labels = ranks(table.column("label"))
    image_rank, images = ranks(table.column("image_id"))
    box_id = table.column("box_id").to_numpy()
    state = seed_state(seed, _PRIORITY_DOMAIN) ^ string_hashes(splits)[split_rank]
    state = splitmix64(splitmix64(state) ^ string_hashes(labels)[label_rank])
    state = splitmix64(state ^ string_hashes(images)[image_rank])
    priority = splitmix64(state ^ box_id.astype(np.uint64))
    group = split_rank * max(len(labels), 1) + label_rank
    image_id = table.column("image_id").combine_chunks()
    rows = _bottom_k(group, priority, image_id, box_id, pool)
    selected = table.take(pa.array(rows, pa.int64()))
    selected = selected.add_column(2, RESERVOIRS.field("priority"), [priority[rows]])
    return _reservoirs_of_sorted(selected)


def merge_reservoirs(reservoirs: Iterable[Reservoir], pool: int) -> Reservoir:
    """Bottom-`pool` of the union of reservoirs of one (split, label) built from disjoint boxes.

    Associative and commutative: any merge order gives the reservoir of all the boxes at once.
    Raises ValueError when given none, or reservoirs of different (split, label).
    """
    check_count("pool", pool)
    parts = list(reservoirs)
    if not parts:
        raise ValueError("merge_reservoirs needs at least one reservoir")
    keys = sorted({(r.split, r.label) for r in parts})
    if len(keys) > 1:
        raise ValueError(f"cannot merge reservoirs of different (split, label): {keys}")
    joined = {
        name: np.concatenate([getattr(r, name) for r in parts])
        for name in ("priority", "image_id", "box_id", *_COORDS)
    }
    rows = _bottom_k(
        np.zeros(joined["priority"].size, dtype=np.int64),
        joined["priority"],
        pa.array(joined["image_id"], pa.string()),
        joined["box_id"],
        pool,
    )
    return Reservoir(*keys[0], **{name: values[rows] for name, values in joined.items()})


def reservoirs_to_table(reservoirs: Iterable[Reservoir]) -> pa.Table:
    """RESERVOIRS rows of all the reservoirs, in the given order (to ship as a side input)."""
    parts = [
        pa.table(
            [
                pa.repeat(pa.scalar(r.split, pa.string()), len(r)),
                pa.repeat(pa.scalar(r.label, pa.string()), len(r)),
                pa.array(r.priority, pa.uint64()),
                pa.array(r.image_id, pa.string()),
                pa.array(r.box_id, pa.int32()),
                *(pa.array(getattr(r, name), pa.float64()) for name in _COORDS),
            ],
            schema=RESERVOIRS,
        )
        for r in reservoirs
    ]
    return pa.concat_tables([RESERVOIRS.empty_table(), *parts])


def reservoirs_from_table(table: pa.Table) -> dict[tuple[str, str], Reservoir]:
    """{(split, label): Reservoir} from RESERVOIRS rows in any order (a shuffle may reorder)."""
    require_columns(table, RESERVOIRS.names, "reservoirs")
    keys = ("split", "label", "priority", "image_id", "box_id")
    table = table.take(pc.sort_indices(table, [(name, "ascending") for name in keys]))
    return {(r.split, r.label): r for r in _reservoirs_of_sorted(table)}
