"""Pair mining: one test per DESIGN rule on hand-built boxes, and a naive-rule property test.

Coordinates are multiples of 1/16 wherever a threshold is hit exactly, so the float
arithmetic is exact and the inclusive and strict sides are really tested.
"""

import csv
import random
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierdata import mining
from hierdata.mining import index_boxes, mine_pairs
from schemas import BOXES, PAIRS, ROWS
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA
FILE = "validation-annotations-bbox.csv"


def box(
    label: str,
    xmin: float,
    xmax: float,
    ymin: float,
    ymax: float,
    *,
    image_id: str = "img0",
    split: str = "validation",
    is_group_of: int = 0,
    file: str = FILE,
    line: int | None = None,
) -> dict[str, Any]:
    """One ROWS row; line None is filled in by rows() from the argument order."""
    return {
        "split": split,
        "image_id": image_id,
        "label": label,
        "source": "verification",
        "confidence": 1.0,
        "xmin": xmin,
        "xmax": xmax,
        "ymin": ymin,
        "ymax": ymax,
        "is_occluded": 0,
        "is_truncated": 0,
        "is_group_of": is_group_of,
        "is_depiction": 0,
        "is_inside": 0,
        "file": file,
        "line": line,
    }


def rows(*boxes: dict[str, Any]) -> pa.Table:
    filled = [
        {**b, "line": b["line"] if b["line"] is not None else k + 2} for k, b in enumerate(boxes)
    ]
    return pa.Table.from_pylist(filled, schema=ROWS)


def mine(*boxes: dict[str, Any], min_box_area: float = 0.0, **options: float) -> pa.Table:
    """Candidates of hand-built boxes as index_boxes + mine_pairs give them."""
    _, candidates = mine_pairs(index_boxes(rows(*boxes), min_box_area), **options)
    return candidates


def pair_ids(candidates: pa.Table) -> list[tuple[str, int, int]]:
    """(image_id, parent_box, child_box) of every candidate, in table order."""
    columns = [
        candidates.column(name).to_pylist() for name in ("image_id", "parent_box", "child_box")
    ]
    return list(zip(*columns, strict=True))


# ---- one test per rule ------------------------------------------------------------------


def test_containment_threshold_inclusive() -> None:
    # Child 0.3125 wide, 0.25 of it inside the parent: containment = 0.8 exactly.
    car = box("Car", 0.0, 0.5, 0.0, 1.0)
    wheel = box("Wheel", 0.25, 0.5625, 0.0, 0.25)
    candidates = mine(car, wheel, containment=0.8)
    assert pair_ids(candidates) == [("img0", 0, 1)]
    assert candidates.column("containment").to_pylist() == [0.8]
    # IoU = 0.0625 / (0.5 + 0.078125 - 0.0625)
    assert candidates.column("iou").to_pylist() == [pytest.approx(0.0625 / 0.515625)]
    assert mine(car, wheel, containment=0.8000001).num_rows == 0
    assert pair_ids(mine(car, wheel, containment=0.5)) == [("img0", 0, 1)]


def test_parent_must_be_strictly_larger() -> None:
    # Equal areas, 87.5% overlap: neither may be the other's parent.
    left = box("Door", 0.0, 0.5, 0.0, 0.5)
    shifted = box("Window", 0.0625, 0.5625, 0.0, 0.5)
    assert mine(left, shifted).num_rows == 0
    # One sixteenth wider: now the wider box is the parent (IoU 0.25/0.28125 < 0.9).
    wider = box("Door", 0.0, 0.5625, 0.0, 0.5)
    inner = box("Window", 0.0625, 0.5625, 0.0, 0.5)
    assert pair_ids(mine(wider, inner)) == [("img0", 0, 1)]
    assert pair_ids(mine(inner, wider)) == [("img0", 1, 0)]


def test_duplicate_iou_excludes_same_object() -> None:
    person = box("Person", 0.0, 0.5, 0.0, 1.0)
    man = box("Man", 0.0, 0.5, 0.0, 0.875)  # inside the person, IoU = 0.875
    assert mine(person, man, duplicate_iou=0.9).num_rows == 1
    # IoU at the threshold is a duplicate (strict <), just above it is not.
    assert mine(person, man, duplicate_iou=0.875).num_rows == 0
    assert pair_ids(mine(person, man, duplicate_iou=0.8750001)) == [("img0", 0, 1)]
    # Default 0.9: a box covering 15/16 of the other is the same object.
    tall_man = box("Man", 0.0, 0.5, 0.0, 0.9375)
    assert mine(person, tall_man).num_rows == 0


def test_duplicate_iou_above_one_disables() -> None:
    person = box("Person", 0.0, 1.0, 0.0, 1.0)
    man = box("Man", 0.0, 1.0, 0.0, 0.9921875)  # IoU = 127/128
    assert mine(person, man).num_rows == 0
    candidates = mine(person, man, duplicate_iou=1.01)
    assert pair_ids(candidates) == [("img0", 0, 1)]
    assert candidates.column("iou").to_pylist() == [0.9921875]


def test_same_label_never_pairs() -> None:
    big_car = box("Car", 0.0, 1.0, 0.0, 1.0)
    small_car = box("Car", 0.25, 0.5, 0.25, 0.5)
    assert mine(big_car, small_car).num_rows == 0
    toy_car = box("Toy", 0.25, 0.5, 0.25, 0.5)
    assert pair_ids(mine(big_car, small_car, toy_car)) == [("img0", 0, 2)]


@pytest.mark.parametrize(("is_group_of", "pairs"), [(1, 0), (0, 1), (-1, 1)])
def test_group_child_excluded(is_group_of: int, pairs: int) -> None:
    # Only a child known to be a group (1) is excluded; unknown (-1) counts as not group.
    tree = box("Tree", 0.0, 1.0, 0.0, 1.0)
    leaves = box("Leaf", 0.25, 0.5, 0.25, 0.5, is_group_of=is_group_of)
    assert mine(tree, leaves).num_rows == pairs


def test_group_parent_allowed() -> None:
    crowd = box("Person", 0.0, 1.0, 0.0, 1.0, is_group_of=1)
    hat = box("Hat", 0.25, 0.5, 0.0, 0.25)
    candidates = mine(crowd, hat)
    assert pair_ids(candidates) == [("img0", 0, 1)]
    assert candidates.column("parent_label").to_pylist() == ["Person"]


def test_min_box_area_drops_before_mining() -> None:
    car = box("Car", 0.0, 1.0, 0.0, 1.0)
    wheel = box("Wheel", 0.0, 0.25, 0.0, 0.25)  # area 0.0625 exactly: kept (inclusive)
    bolt = box("Bolt", 0.5, 0.625, 0.5, 0.625)  # area 0.015625: dropped
    boxes = index_boxes(rows(car, wheel, bolt), min_box_area=0.0625)
    assert boxes.column("kept").to_pylist() == [True, True, False]
    assert boxes.column("area").to_pylist() == [1.0, 0.0625, 0.015625]
    image_box, candidates = mine_pairs(boxes)
    assert image_box.column("child_box").to_pylist() == [0, 1]
    # The bolt would be inside the car, but it takes no part in mining.
    assert pair_ids(candidates) == [("img0", 0, 1)]
    # A dropped box keeps its box_id, so ids still match the boxes table.
    assert boxes.column("box_id").to_pylist() == [0, 1, 2]
    assert pair_ids(mine(car, wheel, bolt, min_box_area=0.0)) == [("img0", 0, 1), ("img0", 0, 2)]


def test_image_box_for_every_kept_box() -> None:
    boxes = index_boxes(
        rows(
            box("Car", 0.0, 0.5, 0.0, 0.5, image_id="b"),
            box("Tree", 0.0, 0.25, 0.0, 1.0, image_id="a"),
            box("Dog", 0.0, 0.0625, 0.0, 0.0625, image_id="a"),  # too small
            box("Cat", 0.5, 1.0, 0.0, 1.0, image_id="a"),
        ),
        min_box_area=0.01,
    )
    image_box, _ = mine_pairs(boxes)
    assert image_box.schema == PAIRS
    assert image_box.to_pylist() == [
        {"split": "validation", "image_id": image, "kind": "image_box", "parent_box": -1,
         "child_box": child, "parent_label": None, "child_label": label,
         "containment": 1.0, "iou": area}
        for image, child, label, area in [
            ("a", 0, "Tree", 0.25), ("a", 2, "Cat", 0.5), ("b", 0, "Car", 0.25),
        ]
    ]  # fmt: skip


def test_pairs_never_cross_images() -> None:
    scene = box("Car", 0.0, 1.0, 0.0, 1.0, image_id="a")
    same_id_other_split = box("Wheel", 0.25, 0.5, 0.25, 0.5, image_id="a", split="test")
    other_image = box("Wheel", 0.25, 0.5, 0.25, 0.5, image_id="b")
    assert mine(scene, same_id_other_split, other_image).num_rows == 0
    wheel_in_a = box("Wheel", 0.25, 0.5, 0.25, 0.5, image_id="a")
    candidates = mine(scene, same_id_other_split, other_image, wheel_in_a)
    assert pair_ids(candidates) == [("a", 0, 1)]
    assert candidates.column("split").to_pylist() == ["validation"]


def test_box_ids_follow_line_order() -> None:
    # Rows arrive shuffled across images and files; ids follow (file, line) per image.
    boxes = index_boxes(
        rows(
            box("C", 0.0, 0.5, 0.0, 0.5, image_id="x", line=9),
            box("D", 0.0, 0.5, 0.0, 0.5, image_id="x", file="b.csv", line=3),
            box("A", 0.0, 0.5, 0.0, 0.5, image_id="x", line=7),
            box("E", 0.0, 0.5, 0.0, 0.5, image_id="w", line=8),
            box("B", 0.0, 0.5, 0.0, 0.5, image_id="x", line=12),
        ),
        min_box_area=0.0,
    )
    assert boxes.schema == BOXES
    assert boxes.column("image_id").to_pylist() == ["w", "x", "x", "x", "x"]
    assert boxes.column("label").to_pylist() == ["E", "D", "A", "C", "B"]  # b.csv < v...csv
    assert boxes.column("box_id").to_pylist() == [0, 0, 1, 2, 3]


def test_candidates_sorted_by_image_parent_child() -> None:
    # Parents listed after their children, images interleaved.
    candidates = mine(
        box("Wheel", 0.25, 0.5, 0.25, 0.5, image_id="b"),
        box("Door", 0.5, 0.75, 0.25, 0.5, image_id="a"),
        box("Wheel", 0.25, 0.5, 0.25, 0.5, image_id="a"),
        box("Car", 0.0, 1.0, 0.0, 1.0, image_id="b"),
        box("Car", 0.0, 1.0, 0.0, 1.0, image_id="a"),
        box("Window", 0.5, 0.625, 0.25, 0.375, image_id="a"),
    )
    assert pair_ids(candidates) == [
        ("a", 0, 3), ("a", 2, 0), ("a", 2, 1), ("a", 2, 3), ("b", 1, 0),
    ]  # fmt: skip
    assert candidates.column("kind").unique().to_pylist() == ["box_box"]
    assert candidates.column("parent_label").to_pylist() == ["Door", "Car", "Car", "Car", "Car"]


def test_mine_pairs_accepts_boxes_in_any_order() -> None:
    boxes = index_boxes(random_rows(random.Random(7), n_images=6), min_box_area=0.01)
    shuffled = boxes.take(np.random.default_rng(0).permutation(boxes.num_rows))
    sliced = pa.concat_tables([shuffled.slice(0, 5), shuffled.slice(5)])  # several chunks
    for mined, expected in zip(mine_pairs(sliced), mine_pairs(boxes), strict=True):
        assert mined.equals(expected)


def test_empty_input_gives_empty_tables() -> None:
    boxes = index_boxes(ROWS.empty_table(), min_box_area=0.01)
    assert boxes.schema == BOXES and boxes.num_rows == 0
    image_box, candidates = mine_pairs(boxes)
    assert image_box.num_rows == candidates.num_rows == 0
    assert image_box.schema == candidates.schema == PAIRS


def test_containment_outside_unit_interval_rejected() -> None:
    with pytest.raises(ValueError, match="containment"):
        mine_pairs(BOXES.empty_table(), containment=1.5)


# ---- the rule, naively ------------------------------------------------------------------


def naive_candidates(
    boxes: pa.Table, containment: float, duplicate_iou: float
) -> list[tuple[Any, ...]]:
    """The DESIGN rule pair by pair in plain Python, sorted like mine_pairs' output."""
    by_image: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in boxes.to_pylist():
        if row["kept"]:
            by_image.setdefault((row["split"], row["image_id"]), []).append(row)
    found = []
    for (split, image_id), image_boxes in by_image.items():
        for p in image_boxes:
            for c in image_boxes:
                if p is c:
                    continue
                width = max(min(p["xmax"], c["xmax"]) - max(p["xmin"], c["xmin"]), 0.0)
                height = max(min(p["ymax"], c["ymax"]) - max(p["ymin"], c["ymin"]), 0.0)
                inter = width * height
                area_p = (p["xmax"] - p["xmin"]) * (p["ymax"] - p["ymin"])
                area_c = (c["xmax"] - c["xmin"]) * (c["ymax"] - c["ymin"])
                inside = inter / area_c
                overlap = inter / (area_p + area_c - inter)
                if (
                    inside >= containment
                    and area_p > area_c
                    and overlap < duplicate_iou
                    and p["label"] != c["label"]
                    and c["is_group_of"] != 1
                ):
                    found.append(
                        (split, image_id, p["box_id"], c["box_id"], p["label"], c["label"],
                         inside, overlap)
                    )  # fmt: skip
    return sorted(found)


def as_tuples(candidates: pa.Table) -> list[tuple[Any, ...]]:
    names = ["split", "image_id", "parent_box", "child_box", "parent_label", "child_label",
             "containment", "iou"]  # fmt: skip
    return list(zip(*(candidates.column(name).to_pylist() for name in names), strict=True))


def random_rows(rng: random.Random, n_images: int) -> pa.Table:
    """Random images on a 1/16 grid (ties and exact thresholds are common), rows shuffled."""
    grid = [k / 16 for k in range(17)]
    result = []
    for image in range(n_images):
        for _ in range(rng.randint(0, 7)):
            xmin, xmax = sorted(rng.sample(grid, 2))
            ymin, ymax = sorted(rng.sample(grid, 2))
            result.append(
                box(rng.choice("ABC"), xmin, xmax, ymin, ymax, image_id=f"i{image % 3}",
                    split=rng.choice(["train", "test"]), is_group_of=rng.choice([-1, 0, 1]),
                    line=rng.randrange(2, 10_000))
            )  # fmt: skip
    rng.shuffle(result)
    return pa.Table.from_pylist(result, schema=ROWS)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_images=st.integers(0, 6),
    containment=st.sampled_from([0.0, 0.5, 0.75, 0.8, 1.0]),
    duplicate_iou=st.sampled_from([0.5, 0.9, 1.0, 1.5]),
    min_box_area=st.sampled_from([0.0, 0.01, 0.0625]),
    pairs_per_block=st.sampled_from([1, 3, 1 << 20]),
)
def test_mine_pairs_equals_naive_rule(
    seed: int,
    n_images: int,
    containment: float,
    duplicate_iou: float,
    min_box_area: float,
    pairs_per_block: int,
) -> None:
    boxes = index_boxes(random_rows(random.Random(seed), n_images), min_box_area)
    # Tiny blocks exercise the block split with the same table.
    with mock.patch.object(mining, "_PAIRS_PER_BLOCK", pairs_per_block):
        image_box, candidates = mine_pairs(boxes, containment, duplicate_iou)
    assert as_tuples(candidates) == naive_candidates(boxes, containment, duplicate_iou)
    assert image_box.num_rows == sum(boxes.column("kept").to_pylist())


# ---- real Open Images rows --------------------------------------------------------------


def read_v3_rows(path: Path) -> pa.Table:
    """The V3 head validation file as ROWS (its rows are all valid Open Images boxes)."""
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    flags = ["IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
    return pa.Table.from_pylist(
        [
            {"split": "validation", "image_id": r["ImageID"], "label": r["LabelName"],
             "source": r["Source"], "confidence": float(r["Confidence"]),
             **{k.lower(): float(r[k]) for k in ("XMin", "XMax", "YMin", "YMax")},
             **{"is_" + f[2:].lower(): int(r[f]) for f in flags},
             "file": path.name, "line": k + 2}
            for k, r in enumerate(records)
        ],
        schema=ROWS,
    )  # fmt: skip


def test_real_open_images_rows_match_naive_rule() -> None:
    path = DATA / "openimages-v3-head" / FILE
    if not path.exists():
        pytest.skip(f"real Open Images fixtures not found at {path.parent}")
    boxes = index_boxes(read_v3_rows(path), min_box_area=0.01)
    assert boxes.num_rows == 1000 and len(boxes.column("image_id").unique()) == 175
    image_box, candidates = mine_pairs(boxes)
    assert as_tuples(candidates) == naive_candidates(boxes, 0.8, 0.9)
    assert image_box.num_rows == sum(boxes.column("kept").to_pylist())
    # The file has near-identical boxes under related labels; the duplicate rule removes them.
    _, without_duplicate_rule = mine_pairs(boxes, duplicate_iou=1.5)
    assert without_duplicate_rule.num_rows > candidates.num_rows > 0
