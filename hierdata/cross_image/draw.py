"""The cross-image draw (DESIGN "Rules", Cross-image): for each (image, label) of the kept
boxes, boxes of that label from other images of the split, taken from the label's reservoir.

Each (split, image I, label y) of the kept boxes (group boxes included: y is among I's labels)
takes min(samples, m) distinct entries of the (split, y) reservoir, where m counts the entries
not from image I. The generator is counter-based: SplitMix64 seeded with a blake2b hash of
(seed, image_id, y), output i = slot i's draw; indices are chosen without replacement by
Floyd's algorithm, vectorised over all pairs at once. So the draw depends on (seed, I, y) and
the reservoir only, never on the runner, the worker count or the other images in a call.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hierdata.cross_image.primitives import (
    GOLDEN,
    MASK64,
    check_count,
    rank_in_run,
    ranks,
    require_columns,
    run_starts,
    seed_state,
    splitmix64,
    string_hashes,
)
from hierdata.cross_image.reservoirs import Reservoir
from schemas.sample import cross_key
from schemas.tables import CROSS_PAIRS

_DRAW_DOMAIN = "cross-image draw"  # seed domain: independent of the reservoir priorities


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
        bits = splitmix64(stream + np.uint64(i * GOLDEN & MASK64))
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
    keys = skip_group * span + (skip_position - rank_in_run(skip_group))
    before = np.searchsorted(keys, group * span + index, "right")
    return index + before - np.searchsorted(keys, group * span, "left")


@dataclass(frozen=True)
class _Groups:
    """The (split, image, label) groups of a call's kept boxes, in output order.

    splits, images, labels: (S,), (I,), (L,) distinct values, sorted; split, image, label:
    (G,) int64 rank of each group's value in them; scene: (G,) split * I + image.
    """

    splits: pa.Array
    images: pa.Array
    labels: pa.Array
    split: np.ndarray
    image: np.ndarray
    label: np.ndarray
    scene: np.ndarray


def _groups(kept: pa.Table) -> _Groups:
    split_rank, splits = ranks(kept.column("split"))
    image_rank, images = ranks(kept.column("image_id"))
    label_rank, labels = ranks(kept.column("label"))
    n_images, n_labels = len(images), len(labels)
    # One group per (split, image, label), in that order: the output order. The key is below
    # splits * images * labels, far from 2^63 for any real table.
    group_values = np.sort((split_rank * n_images + image_rank) * n_labels + label_rank)
    group_values = group_values[run_starts(group_values)]
    scene, label = group_values // n_labels, group_values % n_labels
    return _Groups(splits, images, labels, scene // n_images, scene % n_images, label, scene)


def _group_reservoirs(
    groups: _Groups, reservoirs: Mapping[tuple[str, str], Reservoir]
) -> tuple[np.ndarray, list[Reservoir]]:
    """((G,) int64 index into `used` of each group's reservoir, -1 for none; `used`, the
    non-empty reservoirs the groups need), from one lookup per distinct (split, label)."""
    n_labels = len(groups.labels)
    pair_values, pair_of_group = np.unique(
        groups.split * n_labels + groups.label, return_inverse=True
    )
    split_names, label_names = groups.splits.to_pylist(), groups.labels.to_pylist()
    used: list[Reservoir] = []
    reservoir_of_pair = np.full(pair_values.size, -1, dtype=np.int64)
    for i, pair in enumerate(pair_values.tolist()):
        found = reservoirs.get((split_names[pair // n_labels], label_names[pair % n_labels]))
        if found is not None and len(found):
            reservoir_of_pair[i] = len(used)
            used.append(found)
    return reservoir_of_pair[pair_of_group], used


@dataclass(frozen=True)
class _Entries:
    """The entries of the used reservoirs, concatenated: (E,) image ids (pa strings), box ids
    and reservoir index; offsets and sizes: (R,) where each reservoir's entries start and how
    many it has."""

    image: pa.Array
    box: np.ndarray
    reservoir: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray


def _entries(used: list[Reservoir]) -> _Entries:
    sizes = np.array([len(r) for r in used], dtype=np.int64)
    return _Entries(
        image=pa.array(np.concatenate([r.image_id for r in used]), pa.string()),
        box=np.concatenate([r.box_id for r in used]),
        reservoir=np.repeat(np.arange(len(used)), sizes),
        offsets=np.cumsum(sizes) - sizes,
        sizes=sizes,
    )


def _own_entries(
    groups: _Groups, reservoir: np.ndarray, entries: _Entries
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries each group must skip because they come from its own image.

    Returns:
        ((S,) group and (S,) position in its reservoir of each skipped entry, (G,) skipped
        entries per group).
    """
    # Match (reservoir, image) of entries and groups: a reservoir fixes split and label, so
    # the match is the group.
    n_images = len(groups.images)
    entry_scene = pc.index_in(entries.image, value_set=groups.images).fill_null(-1).to_numpy()
    own_entry = np.flatnonzero(entry_scene >= 0)
    own_key = entries.reservoir[own_entry] * n_images + entry_scene[own_entry]
    group_key = np.where(reservoir >= 0, reservoir * n_images + groups.image, -1)
    by_key = np.argsort(group_key)
    found_at = np.minimum(np.searchsorted(group_key[by_key], own_key), by_key.size - 1)
    matched = group_key[by_key][found_at] == own_key
    own_group = by_key[found_at[matched]]
    own_position = own_entry[matched] - entries.offsets[entries.reservoir[own_entry[matched]]]
    own_count = np.bincount(own_group, minlength=groups.split.size)
    return own_group, own_position, own_count


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
    check_count("samples", samples)
    require_columns(boxes, ("split", "image_id", "label", "kept"), "boxes")
    kept = boxes.filter(boxes.column("kept")).select(["split", "image_id", "label"])
    if kept.num_rows == 0 or samples == 0:
        return CROSS_PAIRS.empty_table()
    groups = _groups(kept)
    reservoir, used = _group_reservoirs(groups, reservoirs)
    if not used:
        return CROSS_PAIRS.empty_table()
    entries = _entries(used)
    own_group, own_position, own_count = _own_entries(groups, reservoir, entries)
    eligible = np.where(reservoir >= 0, entries.sizes[reservoir] - own_count, 0)

    # The generator of (seed, image_id, label): a SplitMix64 stream per group.
    drawing = np.flatnonzero(eligible > 0)
    stream = seed_state(seed, _DRAW_DOMAIN) ^ string_hashes(groups.images)[groups.image[drawing]]
    stream = splitmix64(splitmix64(stream) ^ string_hashes(groups.labels)[groups.label[drawing]])
    chosen = _floyd_draws(stream, eligible[drawing], samples)
    row_of, slot = np.nonzero(chosen >= 0)  # row-major: (group, slot) order
    group = drawing[row_of]
    position = _skip_positions(group, chosen[row_of, slot], own_group, own_position)
    entry = entries.offsets[reservoir[group]] + position

    key_index = rank_in_run(groups.scene[group])
    keys = pa.array([cross_key(i) for i in range(int(key_index.max(initial=-1)) + 1)], pa.string())
    return pa.table(
        [
            groups.splits.take(pa.array(groups.split[group])),
            groups.images.take(pa.array(groups.image[group])),
            groups.labels.take(pa.array(groups.label[group])),
            pa.array(slot.astype(np.int32)),
            entries.image.take(pa.array(entry)),
            pa.array(entries.box[entry].astype(np.int32)),
            keys.take(pa.array(key_index)),
        ],
        schema=CROSS_PAIRS,
    )
