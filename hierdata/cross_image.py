"""Cross-image sampling: per-label reservoirs of boxes and, for each (image, label), the boxes of
that label from other images that the scene entails (DESIGN "Rules", Cross-image).

Reservoir. For each (split, label) the reservoir is a bottom-k sample: every eligible box (kept
and not IsGroupOf == 1: a group crop shows several objects, not "a box of label y"; unknown -1
counts as a single object) gets priority = a stable 64-bit hash of (seed, split, label,
image_id, box_id), and the reservoir holds the `pool` boxes with the smallest priorities (64-bit
ties broken by image_id, then box_id). Since the priority depends on the box alone, merging two
reservoirs is the bottom-k of their union, and the result is the same for any bundling of the
boxes and any merge order (a Beam CombinePerKey). The strings are hashed once per distinct value
with blake2b (8-byte digest), and the per-box combination is a chain of SplitMix64 finalisers
over numpy uint64 arrays: no per-box Python loop, no dependence on Python's hash().

Draw. Each (split, image I, label y) of the kept boxes (group boxes included: y is among I's
labels) takes min(samples, m) distinct entries of the (split, y) reservoir, where m counts the
entries not from image I. The generator is counter-based: SplitMix64 seeded with a blake2b
hash of (seed, image_id, y), output i = slot i's draw; indices are chosen without replacement
by Floyd's algorithm, vectorised over all pairs at once. So the draw depends on (seed, I, y)
and the reservoir only, never on the runner, the worker count or the other images in a call.

Size. Open Images has 600 labels; pool 1000 gives at most 600k entries per split. In memory an
entry takes 8 (priority) + 4 * 16 (image_id, numpy unicode, 16-character Open Images ids)
+ 4 (box_id) + 32 (coordinates) = 108 bytes: about 65 MB per split, 200 MB for train,
validation and test together; as an Arrow table (reservoirs_to_table: UTF-8 strings, split
and label repeated per row) about 85 bytes an entry, 51 MB per split. Either fits a Dataflow
worker's memory as a side input.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.sample import cross_key
from schemas.tables import CROSS_PAIRS

_COORDS = ("xmin", "xmax", "ymin", "ymax")
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # SplitMix64 increment (2^64 / golden ratio)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
# Seed domains: the reservoir priorities and the draws must be independent streams.
_PRIORITY_DOMAIN, _DRAW_DOMAIN = "cross-image reservoir", "cross-image draw"

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


def _require_columns(table: pa.Table, names: Iterable[str], what: str) -> None:
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise ValueError(f"{what} table lacks columns {missing}")


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")


def _splitmix64(state: np.ndarray) -> np.ndarray:
    """(N,) uint64: SplitMix64's output for each state (add the increment, then finalise)."""
    z = state + np.uint64(_GOLDEN)  # uint64 arrays wrap modulo 2^64, as SplitMix64 needs
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _blake64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _string_hashes(values: pa.Array) -> np.ndarray:
    """(V,) uint64 blake2b hash of each string; callers pass distinct values only."""
    return np.fromiter((_blake64(v) for v in values.to_pylist()), np.uint64, len(values))


def _seed_state(seed: int, domain: str) -> np.uint64:
    return np.uint64(_blake64(f"{domain}:{seed}"))


def _ranks(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """((N,) int64 rank of each value among the distinct values, (V,) those values sorted).

    Byte-wise string order; sorting the V distinct strings once is far cheaper than sorting N.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column.dictionary_encode()
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank_of_code = np.empty(order.size, dtype=np.int64)
    rank_of_code[order] = np.arange(order.size)
    return rank_of_code[encoded.indices.to_numpy()], encoded.dictionary.take(order)


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """(N,) bool: True where a run of equal values starts in a sorted (N,) array."""
    starts = np.ones(sorted_keys.size, dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return starts


def _rank_in_run(sorted_keys: np.ndarray) -> np.ndarray:
    """(N,) int64 position of each element within its run of equal values."""
    positions = np.arange(sorted_keys.size)
    return positions - np.maximum.accumulate(np.where(_run_starts(sorted_keys), positions, 0))


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
    run_id = np.cumsum(_run_starts(sorted_group)) - 1
    # The k-th smallest priority bounds each group; rows tied with it stay candidates.
    bound = np.full(run_id[-1] + 1, np.iinfo(np.uint64).max, dtype=np.uint64)
    at_k = _rank_in_run(sorted_group) == k - 1
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
    return exact[_rank_in_run(group[exact]) < k]


def _reservoirs_of_sorted(table: pa.Table) -> list[Reservoir]:
    """One Reservoir per (split, label) run of RESERVOIRS rows sorted by (split, label, ...)."""
    table = table.combine_chunks()
    split_rank, splits = _ranks(table.column("split"))
    label_rank, labels = _ranks(table.column("label"))
    runs = np.flatnonzero(_run_starts(split_rank * max(len(labels), 1) + label_rank))
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
    _check_count("pool", pool)
    _require_columns(
        boxes, ["is_group_of", "kept", *RESERVOIRS.names[:2], *RESERVOIRS.names[3:]], "boxes"
    )
    eligible = pc.and_(boxes.column("kept"), pc.not_equal(boxes.column("is_group_of"), 1))
    table = boxes.filter(eligible).select(RESERVOIRS.names[:2] + RESERVOIRS.names[3:])
    table = table.combine_chunks()
    split_rank, splits = _ranks(table.column("split"))
    label_rank, labels = _ranks(table.column("label"))
    image_rank, images = _ranks(table.column("image_id"))
    box_id = table.column("box_id").to_numpy()
    state = _seed_state(seed, _PRIORITY_DOMAIN) ^ _string_hashes(splits)[split_rank]
    state = _splitmix64(_splitmix64(state) ^ _string_hashes(labels)[label_rank])
    state = _splitmix64(state ^ _string_hashes(images)[image_rank])
    priority = _splitmix64(state ^ box_id.astype(np.uint64))
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
    _check_count("pool", pool)
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
    _require_columns(table, RESERVOIRS.names, "reservoirs")
    keys = ("split", "label", "priority", "image_id", "box_id")
    table = table.take(pc.sort_indices(table, [(name, "ascending") for name in keys]))
    return {(r.split, r.label): r for r in _reservoirs_of_sorted(table)}


def _floyd_draws(stream: np.ndarray, eligible: np.ndarray, samples: int) -> np.ndarray:
    """Distinct uniform indices without replacement, by Floyd's algorithm, one row per stream.

    Args:
        stream: (G,) uint64 SplitMix64 seeds; draw i uses the generator's output i.
        eligible: (G,) int64 > 0, the size of each row's index range [0, eligible).
        samples: indices wanted per row; a row takes min(samples, eligible).
    Returns:
        (G, samples) int64, -1 past each row's min(samples, eligible). Cost O(G * samples^2).
    """
    taken = np.minimum(eligible, samples)
    chosen = np.full((stream.size, samples), -1, dtype=np.int64)
    for i in range(samples):
        # Floyd: the i-th of `taken` draws is uniform in [0, top]; a repeat takes top itself,
        # which no earlier draw can have reached (their tops were smaller).
        top = eligible - taken + i
        bits = _splitmix64(stream + np.uint64(i * _GOLDEN & _MASK64))
        # 53 random bits as a float in [0, 1); the clip guards the rounding of u * (top + 1).
        unit = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
        draw = np.minimum((unit * (top + 1)).astype(np.int64), top)
        repeat = (chosen[:, :i] == draw[:, None]).any(axis=1)
        chosen[:, i] = np.where(i < taken, np.where(repeat, top, draw), -1)
    return chosen


def _skip_positions(
    group: np.ndarray, index: np.ndarray, skip_group: np.ndarray, skip_position: np.ndarray
) -> np.ndarray:
    """(D,) reservoir position of the index-th entry of its group's reservoir that is not
    skipped, for D draws (group, index); (S,) skipped (group, position), any order."""
    order = np.lexsort((skip_position, skip_group))
    skip_group, skip_position = skip_group[order], skip_position[order]
    # The k-th skipped position o_k (0-based, ascending) lies before the index-th kept entry
    # exactly when o_k - k <= index: that many kept entries precede o_k.
    span = int(max(skip_position.max(initial=0), index.max(initial=0))) + 2
    keys = skip_group * span + (skip_position - _rank_in_run(skip_group))
    before = np.searchsorted(keys, group * span + index, "right")
    return index + before - np.searchsorted(keys, group * span, "left")


def sample_cross_image(
    boxes: pa.Table, reservoirs: Mapping[tuple[str, str], Reservoir], samples: int, seed: int
) -> pa.Table:
    """Cross-image pairs: for each (image, label) of the kept boxes, boxes of that label drawn
    from the (split, label) reservoir, excluding the image's own boxes.

    Args:
        boxes: schemas.BOXES holding every kept box of each image it contains (the keys number
            an image's pairs, so an image must not be split across calls).
        reservoirs: {(split, label): Reservoir}, merged over the whole split.
        samples: --cross_image_samples; an (image, label) takes min(samples, m) distinct
            entries, m = its reservoir's entries from other images (no rows when m is 0).
        seed: --seed.
    Returns:
        schemas.CROSS_PAIRS sorted by (split, image_id, label, slot); slot 0.. per (image,
        label); key "xNNN" numbered 0.. within each scene image in (label, slot) order.
    """
    _check_count("samples", samples)
    _require_columns(boxes, ("split", "image_id", "label", "kept"), "boxes")
    kept = boxes.filter(boxes.column("kept")).select(["split", "image_id", "label"])
    if kept.num_rows == 0 or samples == 0:
        return CROSS_PAIRS.empty_table()
    split_rank, splits = _ranks(kept.column("split"))
    image_rank, images = _ranks(kept.column("image_id"))
    label_rank, labels = _ranks(kept.column("label"))
    n_images, n_labels = len(images), len(labels)
    # One group per (split, image, label), in that order: the output order. The key is below
    # splits * images * labels, far from 2^63 for any real table.
    group_values = np.sort((split_rank * n_images + image_rank) * n_labels + label_rank)
    group_values = group_values[_run_starts(group_values)]
    scene, label = group_values // n_labels, group_values % n_labels
    split, image = scene // n_images, scene % n_images

    # The reservoir of each group, from a lookup per distinct (split, label) only.
    pair_values, pair_of_group = np.unique(split * n_labels + label, return_inverse=True)
    split_names, label_names = splits.to_pylist(), labels.to_pylist()
    used: list[Reservoir] = []
    reservoir_of_pair = np.full(pair_values.size, -1, dtype=np.int64)
    for i, pair in enumerate(pair_values.tolist()):
        found = reservoirs.get((split_names[pair // n_labels], label_names[pair % n_labels]))
        if found is not None and len(found):
            reservoir_of_pair[i] = len(used)
            used.append(found)
    if not used:
        return CROSS_PAIRS.empty_table()
    reservoir = reservoir_of_pair[pair_of_group]
    sizes = np.array([len(r) for r in used], dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    entry_image = pa.array(np.concatenate([r.image_id for r in used]), pa.string())
    entry_box = np.concatenate([r.box_id for r in used])
    entry_reservoir = np.repeat(np.arange(len(used)), sizes)

    # Entries from the scene image itself are skipped: match (reservoir, image) of entries
    # and groups (a reservoir fixes split and label, so the match is the group).
    entry_scene = pc.index_in(entry_image, value_set=images).fill_null(-1).to_numpy()
    own_entry = np.flatnonzero(entry_scene >= 0)
    own_key = entry_reservoir[own_entry] * n_images + entry_scene[own_entry]
    group_key = np.where(reservoir >= 0, reservoir * n_images + image, -1)
    by_key = np.argsort(group_key)
    found_at = np.minimum(np.searchsorted(group_key[by_key], own_key), by_key.size - 1)
    matched = group_key[by_key][found_at] == own_key
    own_group = by_key[found_at[matched]]
    own_position = own_entry[matched] - offsets[entry_reservoir[own_entry[matched]]]
    own_count = np.bincount(own_group, minlength=group_values.size)
    eligible = np.where(reservoir >= 0, sizes[reservoir] - own_count, 0)

    # The generator of (seed, image_id, label): a SplitMix64 stream per group.
    drawing = np.flatnonzero(eligible > 0)
    stream = _seed_state(seed, _DRAW_DOMAIN) ^ _string_hashes(images)[image[drawing]]
    stream = _splitmix64(_splitmix64(stream) ^ _string_hashes(labels)[label[drawing]])
    chosen = _floyd_draws(stream, eligible[drawing], samples)
    row_of, slot = np.nonzero(chosen >= 0)  # row-major: (group, slot) order
    group = drawing[row_of]
    position = _skip_positions(group, chosen[row_of, slot], own_group, own_position)
    entry = offsets[reservoir[group]] + position

    key_index = _rank_in_run(scene[group])
    keys = pa.array([cross_key(i) for i in range(int(key_index.max(initial=-1)) + 1)], pa.string())
    return pa.table(
        [
            splits.take(pa.array(split[group])),
            images.take(pa.array(image[group])),
            labels.take(pa.array(label[group])),
            pa.array(slot.astype(np.int32)),
            entry_image.take(pa.array(entry)),
            pa.array(entry_box[entry].astype(np.int32)),
            keys.take(pa.array(key_index)),
        ],
        schema=CROSS_PAIRS,
    )
