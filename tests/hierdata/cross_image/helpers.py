"""Box tables and reservoir comparisons shared by the cross-image tests."""

from collections import Counter

import numpy as np
import pyarrow as pa

from hierdata.cross_image import Reservoir
from schemas.tables import BOXES

FIELDS = ("priority", "image_id", "box_id", "xmin", "xmax", "ymin", "ymax")


def make_boxes(image_ids, labels, *, split="train", kept=None, is_group_of=None) -> pa.Table:
    """BOXES rows; box_id numbers each (split, image)'s boxes in order, coordinates encode it."""
    n = len(image_ids)
    counters: Counter = Counter()
    box_id = []
    for image in image_ids:
        box_id.append(counters[image])
        counters[image] += 1
    xmin = np.array(box_id) / 1000.0
    columns = {
        "split": [split] * n,
        "image_id": list(image_ids),
        "box_id": box_id,
        "label": list(labels),
        "source": [None] * n,
        "confidence": [None] * n,
        "xmin": xmin,
        "xmax": xmin + 0.5,
        "ymin": np.full(n, 0.25),
        "ymax": np.full(n, 0.75),
        "is_occluded": [0] * n,
        "is_truncated": [0] * n,
        "is_group_of": [0] * n if is_group_of is None else list(is_group_of),
        "is_depiction": [0] * n,
        "is_inside": [0] * n,
        "file": ["f.csv"] * n,
        "line": list(range(2, n + 2)),
        "area": np.full(n, 0.25),
        "kept": [True] * n if kept is None else list(kept),
    }
    return pa.table([pa.array(columns[f.name], f.type) for f in BOXES], schema=BOXES)


def random_boxes(seed: int, images: int, boxes: int, labels: int, split: str) -> pa.Table:
    rng = np.random.default_rng(seed)
    image = np.sort(rng.integers(0, images, boxes))
    return make_boxes(
        [f"{split[:2]}{i:05d}" for i in image],
        [f"/m/l{j}" for j in rng.integers(0, labels, boxes)],
        split=split,
        kept=rng.random(boxes) < 0.9,
        is_group_of=rng.choice([-1, 0, 0, 1], boxes),
    )


def by_key(reservoirs) -> dict[tuple[str, str], Reservoir]:
    return {(r.split, r.label): r for r in reservoirs}


def assert_same(a: Reservoir, b: Reservoir) -> None:
    assert (a.split, a.label) == (b.split, b.label)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
