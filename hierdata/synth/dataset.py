"""The synthetic dataset's files in Open Images' formats: bbox CSVs per split, class
descriptions and the hierarchy JSON.

A few malformed rows per split (bad float, XMin > XMax, unknown label, "../etc" ImageID, missing
columns), at most 1 row in 200, exercise the reader's reject path.
"""

import json
from collections.abc import Mapping

import numpy as np
import polars as pl

from hierdata import io
from hierdata.synth.annotations import (
    DEFAULT_IMAGES_PER_SPLIT,
    SPLITS,
    SplitAnnotations,
    generate_split,
)
from hierdata.synth.taxonomy import TAXONOMY, hierarchy

BBOX_COLUMNS = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax"]
BBOX_COLUMNS += ["IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
CLASS_DESCRIPTIONS = "class-descriptions-boxable.csv"
HIERARCHY = "bbox_labels_600_hierarchy.json"

# How each malformed row breaks a copy of a valid row's fields; one row per kind, evenly spread,
# at most one row in 200 (the default --max_reject_fraction is 0.01).
MALFORMED_ROWS = {
    "bad_number": lambda f: [*f[:4], f[4] + "x", *f[5:]],
    "empty_box": lambda f: [*f[:4], f[5], f[4], *f[6:]],  # XMin > XMax
    "unknown_label": lambda f: [*f[:2], "/m/syn_unknown", *f[3:]],
    "bad_image_id": lambda f: ["../etc", *f[1:]],
    "column_count": lambda f: f[:-3],
}


def bbox_csv(ann: SplitAnnotations) -> tuple[bytes, int]:
    """The `{split}-annotations-bbox.csv` bytes of a split and the number of malformed rows."""
    n = len(ann.image)
    columns = [ann.image_ids[ann.image], np.full(n, "xclick")]
    columns += [np.array([label.label_id for label in TAXONOMY])[ann.label], np.ones(n, np.int8)]
    columns += [*ann.boxes.T, ann.is_occluded, ann.is_truncated, ann.is_group_of]
    columns += [np.zeros(n, np.int8), np.zeros(n, np.int8)]
    frame = pl.DataFrame(dict(zip(BBOX_COLUMNS, columns, strict=True)))
    header, *rows = frame.write_csv(float_precision=6).splitlines()
    kinds = list(MALFORMED_ROWS)[: len(rows) // 200]
    # A malformed row follows the row it was made from (same ImageID), except "../etc", which
    # sorts before every hex id: the file stays sorted.
    keyed = [(2 * i, row) for i, row in enumerate(rows)]
    for j, kind in enumerate(kinds):
        base = (j + 1) * len(rows) // (len(kinds) + 1)
        key = -1 if kind == "bad_image_id" else 2 * base + 1
        keyed.append((key, ",".join(MALFORMED_ROWS[kind](rows[base].split(",")))))
    return ("\n".join([header] + [row for _, row in sorted(keyed)]) + "\n").encode(), len(kinds)


def write_synthetic_dataset(
    root: str, images_per_split: Mapping[str, int] | None = None, seed: int = 0
) -> dict:
    """Write the dataset under `root` (local path or fsspec URL), byte-identical for a seed.

    Args:
        root: output folder; files of the same names are replaced.
        images_per_split: images per split, default 1200 train, 200 validation, 200 test.
        seed: every random choice derives from it (>= 0).
    Returns:
        {"root", "seed", "class_descriptions": url, "hierarchy": url, "splits": {split:
        {"path": url, "images", "boxes": valid rows, "malformed_rows"}}}.
    """
    sizes = dict(DEFAULT_IMAGES_PER_SPLIT if images_per_split is None else images_per_split)
    if seed < 0 or any(n < 0 for n in sizes.values()) or not set(sizes) <= set(SPLITS):
        raise ValueError(f"need seed >= 0 and image counts >= 0 for {SPLITS}; got {seed}, {sizes}")
    summary: dict = {"root": root, "seed": seed, "splits": {}}
    for split, n in sizes.items():
        ann = generate_split(split, int(n), seed)
        data, malformed = bbox_csv(ann)
        path = io.join(root, f"{split}-annotations-bbox.csv")
        io.write_bytes(path, data)
        counts = {"images": int(n), "boxes": len(ann.image), "malformed_rows": malformed}
        summary["splits"][split] = {"path": path, **counts}
    summary["class_descriptions"] = io.join(root, CLASS_DESCRIPTIONS)
    labels = sorted((label.label_id, label.name) for label in TAXONOMY)  # official order
    classes = "".join(f"{label_id},{name}\n" for label_id, name in labels)
    io.write_bytes(summary["class_descriptions"], classes.encode())
    summary["hierarchy"] = io.join(root, HIERARCHY)
    io.write_bytes(summary["hierarchy"], json.dumps(hierarchy(), indent=4).encode())
    return summary
