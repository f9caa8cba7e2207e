"""Synthetic Open Images-like bbox files for the mining benchmark (vectorised numpy, seeded).

Shaped like the real train file: ~7.5 boxes per image, a tail past 100, Zipf labels, nested parts.
"""

from pathlib import Path

import numpy as np
import polars as pl

N_CLASSES = 600
HEADER = [
    "ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
    "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside",
]  # fmt: skip
MAX_BOXES_PER_IMAGE = 300
NESTED_FRACTION = 0.45  # of boxes that are not first in their image
MIN_SIDE = 1e-4  # keeps XMin < XMax after rounding to the file's 6 decimals


def label_ids() -> list[str]:
    return [f"/m/b{i:03d}" for i in range(N_CLASSES)]


def _boxes_per_image(rng: np.random.Generator, n_boxes: int) -> np.ndarray:
    """Counts per image summing to n_boxes: lognormal body (mean ~6.7) plus a 3% Pareto tail."""
    n_draw = int(n_boxes / 5) + 16  # more images than needed; the cumsum cut trims them
    body = 1 + np.floor(rng.lognormal(1.45, 0.8, n_draw))
    tail = np.floor(15 * (1 + rng.pareto(1.3, n_draw)))
    counts = np.where(rng.random(n_draw) < 0.03, tail, body)
    counts = np.minimum(counts, MAX_BOXES_PER_IMAGE).astype(np.int64)
    ends = np.cumsum(counts)
    n_images = int(np.searchsorted(ends, n_boxes)) + 1
    counts = counts[:n_images]
    counts[-1] -= ends[n_images - 1] - n_boxes
    return counts


def _image_ids(rng: np.random.Generator, n_images: int) -> np.ndarray:
    """Distinct sorted 16-hex-digit ids (like '000595fe6fee6369'), as a numpy U16 array."""
    raw = np.unique(rng.integers(0, 2**63, size=int(n_images * 1.01) + 8, dtype=np.int64))
    raw = np.sort(rng.choice(raw, n_images, replace=False)).astype(np.uint64)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = (raw[:, None] >> shifts) & np.uint64(0xF)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles.astype(np.intp)]
    return np.ascontiguousarray(digits).view("S16").ravel().astype("U16")


def generate(n_boxes: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Returns (train rows in HEADER order sorted by ImageID, class descriptions label_id, name).

    Coordinates are normalised, in [0, 1], XMin < XMax and YMin < YMax after 6-decimal rounding.
    """
    rng = np.random.default_rng(seed)
    counts = _boxes_per_image(rng, n_boxes)
    image = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    position = np.arange(n_boxes) - starts[image]  # generation order within the image

    zipf = 1.0 / np.arange(1, N_CLASSES + 1) ** 1.05
    zipf /= zipf.sum()
    label = rng.choice(N_CLASSES, n_boxes, p=zipf)
    # A fixed "part of" table gives label pairs that recur often enough to be accepted.
    parts = rng.choice(N_CLASSES, (N_CLASSES, 3), p=zipf)
    parts = np.where(parts == np.arange(N_CLASSES)[:, None], (parts + 1) % N_CLASSES, parts)
    alias = (np.arange(N_CLASSES) + 1 + rng.integers(0, 5, N_CLASSES)) % N_CLASSES  # Person/Man

    side = np.clip(rng.lognormal(np.log(0.3), 0.8, (n_boxes, 2)), MIN_SIDE, 1.0)
    low = rng.random((n_boxes, 2)) * (1 - side)
    nested = (position > 0) & (rng.random(n_boxes) < NESTED_FRACTION)
    parent = starts[image] + np.floor(rng.random(n_boxes) * position).astype(np.int64)
    kind = rng.random(n_boxes)  # < .7 inside, < .92 straddling, else a near-duplicate alias
    scale = rng.uniform(0.15, 0.85, (n_boxes, 2))
    offset = rng.random((n_boxes, 2))
    jitter = rng.uniform(-0.35, 0.35, (n_boxes, 2))
    dup_jitter = rng.uniform(-0.03, 0.03, (n_boxes, 2))
    part_pick = rng.choice(3, n_boxes, p=[0.6, 0.3, 0.1])
    use_part = rng.random(n_boxes) < 0.75

    # Children copy their parent's (final) geometry, so resolve positions in generation order;
    # each step is vectorised over all images that have a nested box at that position.
    order = np.flatnonzero(nested)
    order = order[np.argsort(position[order], kind="stable")]
    bounds = np.searchsorted(position[order], np.arange(position.max() + 2))
    for k in range(1, position.max() + 1):
        child = order[bounds[k] : bounds[k + 1]]
        if child.size == 0:
            continue
        p = parent[child]
        p_side, p_low, dup = side[p], low[p], kind[child] >= 0.92
        c_side = np.where(dup[:, None], p_side * (1 + dup_jitter[child]), p_side * scale[child])
        c_low = np.where(
            dup[:, None],
            p_low + p_side * dup_jitter[child],
            p_low + (p_side - c_side) * offset[child],
        )
        straddle = (kind[child] >= 0.7) & ~dup
        c_low = c_low + np.where(straddle[:, None], c_side * jitter[child], 0.0)
        c_side = np.clip(c_side, MIN_SIDE, 1.0)
        side[child] = c_side
        low[child] = np.clip(c_low, 0.0, 1.0 - c_side)
        part = np.where(use_part[child], parts[label[p], part_pick[child]], label[child])
        label[child] = np.where(dup, alias[label[p]], part)

    coords = np.round(np.concatenate([low, low + side], axis=1), 6)  # xmin, ymin, xmax, ymax
    flags = (rng.random((n_boxes, 5)) < [0.4, 0.25, 0.05, 0.03, 0.01]).astype(np.int8)

    # Open Images lists boxes of an image in no particular order: shuffle within images.
    shuffle = np.lexsort((rng.random(n_boxes), image))
    names = label_ids()
    ids = _image_ids(rng, counts.size)
    columns = [
        pl.Series(ids).gather(image[shuffle]),
        pl.Series(np.where(rng.random(n_boxes) < 0.3, "activemil", "xclick")[shuffle]),
        pl.Series(names).gather(label[shuffle]),
        pl.Series(np.ones(n_boxes, dtype=np.int8)),
        *(pl.Series(coords[shuffle, i]) for i in (0, 2, 1, 3)),
        *(pl.Series(flags[shuffle, i]) for i in range(5)),
    ]
    train = pl.DataFrame(dict(zip(HEADER, columns, strict=True)))
    display = [f"Thing {i:03d}" for i in range(N_CLASSES)]
    classes = pl.DataFrame({"label_id": names, "name": display})
    return train, classes


def write_dataset(root: Path, n_boxes: int, seed: int = 0) -> pl.DataFrame:
    """Writes train-annotations-bbox.csv and class-descriptions-boxable.csv under root."""
    train, classes = generate(n_boxes, seed)
    root.mkdir(parents=True, exist_ok=True)
    train.write_csv(root / "train-annotations-bbox.csv", float_precision=6)
    classes.write_csv(root / "class-descriptions-boxable.csv", include_header=False)
    return train
