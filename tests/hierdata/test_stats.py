"""Label-pair statistics: counts on hand cases, both thresholds, the same-object filter, partial
sums (LabelPairCounts), is-a guard, the run record's summaries."""

import random
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hierdata.mining import index_boxes, mine_pairs
from hierdata.stats import (
    LabelPairCounts,
    accepted_label_pairs,
    filter_accepted,
    is_accepted,
    is_same_object,
    isa_blocked_pairs,
    label_counts,
    label_pair_stats,
    label_pair_summary,
    pair_counts,
    same_object_pairs,
)
from schemas import LABEL_COUNTS, LABEL_PAIRS, PAIR_COUNTS, PAIR_IOU_COUNTS, PAIRS, ROWS
from tests.hierdata import label_pair_rows

CAR, WHEEL, DOOR = "/m/0k4j", "/m/083wq", "/m/02dgv"
NAMES = {CAR: "Car", WHEEL: "Wheel", DOOR: "Door"}


def box(
    label: str, xmin: float, xmax: float, ymin: float, ymax: float, image_id: str, line: int
) -> dict[str, Any]:
    return {
        "split": "train", "image_id": image_id, "label": label, "source": None,
        "confidence": None, "xmin": xmin, "xmax": xmax, "ymin": ymin, "ymax": ymax,
        "is_occluded": 0, "is_truncated": 0, "is_group_of": 0, "is_depiction": 0,
        "is_inside": 0, "file": "train-annotations-bbox.csv", "line": line,
    }  # fmt: skip


def three_cars() -> pa.Table:
    """3 Car boxes: one holds 2 wheels, one holds 1 wheel, one holds none; plus a tiny door."""
    return pa.Table.from_pylist(
        [
            box(CAR, 0.0, 0.5, 0.0, 0.5, "a", 2),
            box(WHEEL, 0.0, 0.125, 0.375, 0.5, "a", 3),
            box(WHEEL, 0.25, 0.375, 0.375, 0.5, "a", 4),
            box(CAR, 0.5, 1.0, 0.5, 1.0, "a", 5),
            box(CAR, 0.0, 0.5, 0.0, 0.5, "b", 6),
            box(WHEEL, 0.0, 0.125, 0.375, 0.5, "b", 7),
            box(DOOR, 0.0, 0.0625, 0.0, 0.0625, "b", 8),  # below min_box_area
        ],
        schema=ROWS,
    )


def candidate(
    image_id: str, parent_box: int, child_box: int, parent: str, child: str
) -> dict[str, Any]:
    return {
        "split": "train", "image_id": image_id, "kind": "box_box", "parent_box": parent_box,
        "child_box": child_box, "parent_label": parent, "child_label": child,
        "containment": 1.0, "iou": 0.25,
    }  # fmt: skip


def counts(*rows: tuple, labels: dict[str, int], iou: float = 0.1) -> LabelPairCounts:
    return label_pair_rows.pair_counts(*rows, labels=labels, iou=iou)


def stats_row(table: pa.Table, parent: str, child: str) -> dict[str, Any]:
    rows = [
        r for r in table.to_pylist() if (r["parent_label"], r["child_label"]) == (parent, child)
    ]
    assert len(rows) == 1
    return rows[0]


def test_frequency_and_proportion_hand_case() -> None:
    boxes = index_boxes(three_cars(), min_box_area=0.01)
    _, candidates = mine_pairs(boxes)
    counted = pair_counts(candidates)
    assert counted.schema == PAIR_COUNTS
    assert counted.to_pylist() == [
        {"parent_label": CAR, "child_label": WHEEL, "frequency": 3, "parents_with_child": 2,
         "children_with_parent": 3}
    ]  # fmt: skip
    kept = label_counts(boxes)
    assert kept.schema == LABEL_COUNTS
    # Sorted by label id; the door is below min_box_area and not counted.
    assert kept.to_pylist() == [
        {"label": WHEEL, "kept_boxes": 3},
        {"label": CAR, "kept_boxes": 3},
    ]
    whole = LabelPairCounts.of_images(boxes, candidates)
    # Each wheel covers 1/16 of its car: IoU 0.0625, bin 6; the median of three pairs in one
    # bin is interpolated to the bin's middle pair: (6 + 1.5 / 3) / 100.
    assert whole.ious.to_pylist() == [
        {"parent_label": CAR, "child_label": WHEEL, "iou_bin": 6, "pairs": 3}
    ]
    stats = label_pair_stats(whole, NAMES, min_pair_frequency=3, min_pair_proportion=0.5)
    assert stats.schema == LABEL_PAIRS
    assert stats.to_pylist() == [
        {"parent_label": CAR, "child_label": WHEEL, "parent_name": "Car", "child_name": "Wheel",
         "frequency": 3, "parents_with_child": 2, "parent_boxes": 3, "proportion": 2 / 3,
         "children_with_parent": 3, "child_boxes": 3, "iou_median": pytest.approx(0.065),
         "near_duplicate_share": 0.0, "isa": False, "same_object": False, "accepted": True}
    ]  # fmt: skip


def test_parents_and_children_counted_per_split_and_image() -> None:
    # parent_box 0 exists in two images and in two splits: three distinct parent boxes. Child
    # box 1 of image "a" lies in two cars (0 and 3): one child with a parent, not two.
    rows = [
        candidate("a", 0, 1, CAR, WHEEL),
        candidate("a", 0, 2, CAR, WHEEL),
        candidate("a", 3, 1, CAR, WHEEL),
        candidate("b", 0, 1, CAR, WHEEL),
        {**candidate("a", 0, 1, CAR, WHEEL), "split": "test"},
        candidate("a", 0, 3, CAR, DOOR),
    ]
    counted = pair_counts(pa.Table.from_pylist(rows, schema=PAIRS))
    assert counted.to_pylist() == [
        {"parent_label": CAR, "child_label": DOOR, "frequency": 1, "parents_with_child": 1,
         "children_with_parent": 1},
        {"parent_label": CAR, "child_label": WHEEL, "frequency": 5, "parents_with_child": 4,
         "children_with_parent": 4},
    ]  # fmt: skip


def test_pair_counts_ignores_image_box_rows() -> None:
    image_box = {**candidate("a", -1, 1, CAR, WHEEL), "kind": "image_box", "parent_label": None}
    rows = [image_box, candidate("a", 0, 1, CAR, WHEEL)]
    counted = pair_counts(pa.Table.from_pylist(rows, schema=PAIRS))
    assert counted.column("frequency").to_pylist() == [1]


@pytest.mark.parametrize(("frequency", "accepted"), [(50, True), (49, False)])
def test_min_pair_frequency_inclusive(frequency: int, accepted: bool) -> None:
    stats = label_pair_stats(
        counts((CAR, WHEEL, frequency, 40), labels={CAR: 100, WHEEL: 9}), NAMES
    )
    assert stats.column("accepted").to_pylist() == [accepted]


@pytest.mark.parametrize(("parents_with_child", "accepted"), [(10, True), (9, False)])
def test_min_pair_proportion_inclusive(parents_with_child: int, accepted: bool) -> None:
    # 10 of 100 Car boxes is a proportion of exactly the default 0.1.
    stats = label_pair_stats(
        counts((CAR, WHEEL, 500, parents_with_child), labels={CAR: 100, WHEEL: 9}), NAMES
    )
    assert stats.column("proportion").to_pylist() == [parents_with_child / 100]
    assert stats.column("accepted").to_pylist() == [accepted]


@pytest.mark.parametrize(
    ("iou", "same_object_iou", "same_object"),
    [
        (0.815, 0.7, True),  # Tire/Wheel on Open Images V3
        (0.745, 0.7, True),  # Woman/Girl
        (0.705, 0.7, True),  # bin 70: interpolated median 0.705 >= 0.7
        (0.695, 0.7, False),  # bin 69: 0.695
        (0.535, 0.7, False),  # Head/Face
        (0.035, 0.7, False),  # Car/Wheel
        (0.995, 1.01, False),  # above 1 disables the rule
    ],
)
def test_same_object_pairs_are_never_accepted(
    iou: float, same_object_iou: float, same_object: bool
) -> None:
    """DESIGN "Label-pair statistics": a pair whose candidates' median IoU reaches
    --same_object_iou is one object under two labels, never a part-of pair."""
    row = stats_row(
        label_pair_stats(
            counts((CAR, WHEEL, 100, 50), labels={CAR: 100, WHEEL: 100}, iou=iou),
            NAMES,
            same_object_iou=same_object_iou,
        ),
        CAR,
        WHEEL,
    )
    assert row["iou_median"] == pytest.approx(int(iou * 100) / 100 + 0.005)
    assert row["near_duplicate_share"] == (1.0 if iou >= 0.5 else 0.0)
    assert (row["same_object"], row["accepted"]) == (same_object, not same_object)


def test_acceptance_rule_is_one_predicate() -> None:
    """stats.is_accepted: both thresholds (inclusive), not is-a, not the same object."""
    frequency = np.array([50, 49, 50, 50, 50])
    proportion = np.array([0.1, 0.5, 0.09, 0.5, 0.5])
    isa = np.array([False, False, False, True, False])
    same_object = is_same_object(np.array([0.2, 0.2, 0.2, 0.2, 0.7]), 0.7)
    assert same_object.tolist() == [False, False, False, False, True]
    accepted = is_accepted(frequency, proportion, isa, same_object, 50, 0.1)
    assert accepted.tolist() == [True, False, False, False, False]


def test_isa_pairs_never_accepted() -> None:
    counted = counts(
        (CAR, WHEEL, 500, 90), (CAR, DOOR, 500, 90), (WHEEL, CAR, 500, 90),
        labels={CAR: 100, WHEEL: 100, DOOR: 100},
    )  # fmt: skip
    # (Wheel, Car) given as is-a guards (Car, Wheel) too: the relation has no direction.
    stats = label_pair_stats(counted, NAMES, isa_pairs=[(WHEEL, CAR)])
    rows = [
        (r["parent_label"], r["child_label"], r["isa"], r["accepted"]) for r in stats.to_pylist()
    ]
    # Sorted by label id: "/m/083wq" (Wheel) < "/m/0k4j" (Car), then "/m/02dgv" (Door).
    assert rows == [
        (WHEEL, CAR, True, False),
        (CAR, DOOR, False, True),
        (CAR, WHEEL, True, False),
    ]
    assert accepted_label_pairs(stats) == frozenset({(CAR, DOOR)})


def random_images(seed: int = 3) -> pa.Table:
    """schemas.BOXES of 60 images i00..i59 with 1-8 boxes of four labels each."""
    rng = random.Random(seed)
    labels = [CAR, WHEEL, DOOR, "/m/0199g"]
    rows = []
    for image in range(60):
        for line in range(rng.randint(1, 8)):
            x0, y0 = rng.choice([0.0, 0.25, 0.5]), rng.choice([0.0, 0.25, 0.5])
            size = rng.choice([0.125, 0.25, 0.5])
            rows.append(
                box(rng.choice(labels), x0, x0 + size, y0, y0 + size, f"i{image:02d}", line + 2)
            )
    return index_boxes(pa.Table.from_pylist(rows, schema=ROWS), min_box_area=0.01)


def test_partial_counts_sum_to_whole() -> None:
    boxes = random_images()
    _, candidates = mine_pairs(boxes)
    thresholds = {"min_pair_frequency": 5, "min_pair_proportion": 0.1}
    whole = label_pair_stats(LabelPairCounts.of_images(boxes, candidates), {}, **thresholds)
    accepted = sum(whole.column("accepted").to_pylist())
    assert whole.num_rows > 3 and 0 < accepted < whole.num_rows
    # Partial tables from disjoint batches of images, concatenated in a scrambled order.
    parts = []
    for batch in (range(40, 60), range(0, 17), range(17, 40)):
        images = pa.array([f"i{k:02d}" for k in batch])
        in_batch = pc.is_in(candidates["image_id"], value_set=images)
        parts.append(
            LabelPairCounts.of_images(
                boxes.filter(pc.is_in(boxes["image_id"], images)), candidates.filter(in_batch)
            )
        )
    concatenated = LabelPairCounts(
        *(pa.concat_tables([getattr(part, name) for part in parts])
          for name in ("pairs", "labels", "ious"))
    )  # fmt: skip
    assert label_pair_stats(concatenated, {}, **thresholds).equals(whole)


def test_display_names_fall_back_to_label_id() -> None:
    stats = label_pair_stats(
        counts((CAR, "/m/unknown", 1, 1), labels={CAR: 2, "/m/unknown": 1}), {CAR: "Car"}
    )
    assert stats.column("parent_name").to_pylist() == ["Car"]
    assert stats.column("child_name").to_pylist() == ["/m/unknown"]


def test_missing_label_counts_are_an_error() -> None:
    with pytest.raises(ValueError, match="lacks parent_labels"):
        label_pair_stats(counts((CAR, WHEEL, 5, 1), labels={WHEEL: 5}), NAMES)
    with pytest.raises(ValueError, match="lacks child_labels"):
        label_pair_stats(counts((CAR, WHEEL, 5, 1), labels={CAR: 5}), NAMES)
    no_ious = counts((CAR, WHEEL, 5, 1), labels={CAR: 5, WHEEL: 5})
    with pytest.raises(ValueError, match="IoU counts lack"):
        label_pair_stats(LabelPairCounts(no_ious.pairs, no_ious.labels, no_ious.ious[:0]), NAMES)


def test_filter_accepted_keeps_accepted_pairs_in_order() -> None:
    image_box = {**candidate("a", -1, 2, CAR, WHEEL), "kind": "image_box", "parent_label": None}
    rows = [
        candidate("b", 0, 1, CAR, WHEEL),
        candidate("a", 0, 1, CAR, DOOR),
        image_box,
        candidate("a", 0, 2, WHEEL, CAR),  # reversed pair: not accepted
        candidate("a", 3, 2, CAR, WHEEL),
    ]
    candidates = pa.Table.from_pylist(rows, schema=PAIRS)
    kept = filter_accepted(candidates, {(CAR, WHEEL)})
    assert kept.schema == PAIRS
    assert [(r["image_id"], r["parent_box"], r["child_box"]) for r in kept.to_pylist()] == [
        ("b", 0, 1),
        ("a", 3, 2),
    ]
    assert filter_accepted(candidates, frozenset()).num_rows == 0


def test_empty_inputs_give_empty_tables() -> None:
    empty = LabelPairCounts.of_images(index_boxes(ROWS.empty_table(), 0.01), PAIRS.empty_table())
    assert empty.pairs.schema == PAIR_COUNTS and empty.pairs.num_rows == 0
    assert empty.labels.schema == LABEL_COUNTS and empty.labels.num_rows == 0
    assert empty.ious.schema == PAIR_IOU_COUNTS and empty.ious.num_rows == 0
    stats = label_pair_stats(empty, NAMES)
    assert stats.schema == LABEL_PAIRS and stats.num_rows == 0
    assert accepted_label_pairs(stats) == frozenset()


def test_blocked_pairs_and_run_record_summary() -> None:
    counted = counts(
        (CAR, DOOR, 10, 5), (CAR, WHEEL, 10, 5), (WHEEL, DOOR, 1, 1),
        labels={CAR: 10, WHEEL: 10, DOOR: 10},
    )  # fmt: skip
    table = label_pair_stats(counted, NAMES, 5, 0.1, 0.7, {(CAR, WHEEL), (WHEEL, DOOR)})
    # (WHEEL, DOOR) is is-a too, but fails the frequency threshold: not "blocked" by the guard.
    assert isa_blocked_pairs(table, 5, 0.1) == [(CAR, WHEEL)]
    assert isa_blocked_pairs(table, 11, 0.1) == []
    assert same_object_pairs(table, 5, 0.1) == []
    assert label_pair_summary(table, 5, 0.1) == {
        "candidate_label_pairs": 3,
        "accepted_label_pairs": 1,
        "isa_label_pairs": 2,
        "same_object_label_pairs": 0,
        "same_object_blocked": 0,
    }
    # All three as one object (IoU 0.8): only (CAR, DOOR) is refused by the filter alone.
    counted = counts(
        (CAR, DOOR, 10, 5), (CAR, WHEEL, 10, 5), (WHEEL, DOOR, 1, 1),
        labels={CAR: 10, WHEEL: 10, DOOR: 10}, iou=0.8,
    )  # fmt: skip
    table = label_pair_stats(counted, NAMES, 5, 0.1, 0.7, {(CAR, WHEEL), (WHEEL, DOOR)})
    assert same_object_pairs(table, 5, 0.1) == [(CAR, DOOR)]
    summary = label_pair_summary(table, 5, 0.1)
    assert (summary["accepted_label_pairs"], summary["same_object_label_pairs"]) == (0, 3)
    assert summary["same_object_blocked"] == 1
    empty = label_pair_stats(LabelPairCounts.merge([]), NAMES)
    assert isa_blocked_pairs(empty, 5, 0.1) == same_object_pairs(empty, 5, 0.1) == []
    assert label_pair_summary(empty, 5, 0.1) == dict.fromkeys(summary, 0)
