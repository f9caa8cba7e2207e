"""Label-pair statistics: counts on hand cases, both thresholds, partial sums (LabelPairCounts),
is-a guard, the run record's summaries."""

import random
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hierdata.mining import index_boxes, mine_pairs
from hierdata.stats import (
    LabelPairCounts,
    accepted_label_pairs,
    filter_accepted,
    in_splits,
    isa_blocked_pairs,
    label_counts,
    label_pair_stats,
    label_pair_summary,
    pair_counts,
)
from schemas import LABEL_COUNTS, LABEL_PAIRS, PAIR_COUNTS, PAIRS, ROWS

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


def counts_table(*rows: tuple[str, str, int, int]) -> pa.Table:
    names = PAIR_COUNTS.names
    return pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows], PAIR_COUNTS)


def label_table(*rows: tuple[str, int]) -> pa.Table:
    names = LABEL_COUNTS.names
    return pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows], LABEL_COUNTS)


def stats_row(table: pa.Table, parent: str, child: str) -> dict[str, Any]:
    rows = [
        r for r in table.to_pylist() if (r["parent_label"], r["child_label"]) == (parent, child)
    ]
    assert len(rows) == 1
    return rows[0]


def test_frequency_and_proportion_hand_case() -> None:
    boxes = index_boxes(three_cars(), min_box_area=0.01)
    _, candidates = mine_pairs(boxes)
    counts = pair_counts(candidates)
    assert counts.schema == PAIR_COUNTS
    assert counts.to_pylist() == [
        {"parent_label": CAR, "child_label": WHEEL, "frequency": 3, "parents_with_child": 2}
    ]
    kept = label_counts(boxes)
    assert kept.schema == LABEL_COUNTS
    # Sorted by label id; the door is below min_box_area and not counted.
    assert kept.to_pylist() == [
        {"label": WHEEL, "kept_boxes": 3},
        {"label": CAR, "kept_boxes": 3},
    ]
    stats = label_pair_stats(counts, kept, NAMES, min_pair_frequency=3, min_pair_proportion=0.5)
    assert stats.schema == LABEL_PAIRS
    assert stats.to_pylist() == [
        {"parent_label": CAR, "child_label": WHEEL, "parent_name": "Car", "child_name": "Wheel",
         "frequency": 3, "parents_with_child": 2, "parent_boxes": 3, "proportion": 2 / 3,
         "isa": False, "accepted": True}
    ]  # fmt: skip


def test_parents_counted_per_split_and_image() -> None:
    # parent_box 0 exists in two images and in two splits: three distinct parent boxes.
    rows = [
        candidate("a", 0, 1, CAR, WHEEL),
        candidate("a", 0, 2, CAR, WHEEL),
        candidate("b", 0, 1, CAR, WHEEL),
        {**candidate("a", 0, 1, CAR, WHEEL), "split": "test"},
        candidate("a", 0, 3, CAR, DOOR),
    ]
    counts = pair_counts(pa.Table.from_pylist(rows, schema=PAIRS))
    assert counts.to_pylist() == [
        {"parent_label": CAR, "child_label": DOOR, "frequency": 1, "parents_with_child": 1},
        {"parent_label": CAR, "child_label": WHEEL, "frequency": 4, "parents_with_child": 3},
    ]


def test_pair_counts_ignores_image_box_rows() -> None:
    image_box = {**candidate("a", -1, 1, CAR, WHEEL), "kind": "image_box", "parent_label": None}
    rows = [image_box, candidate("a", 0, 1, CAR, WHEEL)]
    counts = pair_counts(pa.Table.from_pylist(rows, schema=PAIRS))
    assert counts.column("frequency").to_pylist() == [1]


@pytest.mark.parametrize(("frequency", "accepted"), [(50, True), (49, False)])
def test_min_pair_frequency_inclusive(frequency: int, accepted: bool) -> None:
    stats = label_pair_stats(
        counts_table((CAR, WHEEL, frequency, 40)), label_table((CAR, 100)), NAMES
    )
    assert stats.column("accepted").to_pylist() == [accepted]


@pytest.mark.parametrize(("parents_with_child", "accepted"), [(10, True), (9, False)])
def test_min_pair_proportion_inclusive(parents_with_child: int, accepted: bool) -> None:
    # 10 of 100 Car boxes is a proportion of exactly the default 0.1.
    stats = label_pair_stats(
        counts_table((CAR, WHEEL, 500, parents_with_child)), label_table((CAR, 100)), NAMES
    )
    assert stats.column("proportion").to_pylist() == [parents_with_child / 100]
    assert stats.column("accepted").to_pylist() == [accepted]


def test_isa_pairs_never_accepted() -> None:
    counts = counts_table((CAR, WHEEL, 500, 90), (CAR, DOOR, 500, 90), (WHEEL, CAR, 500, 90))
    labels = label_table((CAR, 100), (WHEEL, 100))
    # (Wheel, Car) given as is-a guards (Car, Wheel) too: the relation has no direction.
    stats = label_pair_stats(counts, labels, NAMES, isa_pairs=[(WHEEL, CAR)])
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
    whole = label_pair_stats(pair_counts(candidates), label_counts(boxes), {}, **thresholds)
    accepted = sum(whole.column("accepted").to_pylist())
    assert whole.num_rows > 3 and 0 < accepted < whole.num_rows
    # Partial tables from disjoint batches of images, concatenated in a scrambled order.
    partial_counts, partial_labels = [], []
    for batch in (range(40, 60), range(0, 17), range(17, 40)):
        images = pa.array([f"i{k:02d}" for k in batch])
        in_batch = pc.is_in(candidates["image_id"], value_set=images)
        partial_counts.append(pair_counts(candidates.filter(in_batch)))
        partial_labels.append(label_counts(boxes.filter(pc.is_in(boxes["image_id"], images))))
    summed = label_pair_stats(
        pa.concat_tables(partial_counts), pa.concat_tables(partial_labels), {}, **thresholds
    )
    assert summed.equals(whole)


def test_display_names_fall_back_to_label_id() -> None:
    stats = label_pair_stats(
        counts_table((CAR, "/m/unknown", 1, 1)), label_table((CAR, 2)), {CAR: "Car"}
    )
    assert stats.column("parent_name").to_pylist() == ["Car"]
    assert stats.column("child_name").to_pylist() == ["/m/unknown"]


def test_missing_parent_label_count_is_an_error() -> None:
    with pytest.raises(ValueError, match="lacks parent labels"):
        label_pair_stats(counts_table((CAR, WHEEL, 5, 1)), label_table((WHEEL, 5)), NAMES)


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
    counts = pair_counts(PAIRS.empty_table())
    labels = label_counts(index_boxes(ROWS.empty_table(), 0.01))
    assert counts.schema == PAIR_COUNTS and counts.num_rows == 0
    assert labels.schema == LABEL_COUNTS and labels.num_rows == 0
    stats = label_pair_stats(counts, labels, NAMES)
    assert stats.schema == LABEL_PAIRS and stats.num_rows == 0
    assert accepted_label_pairs(stats) == frozenset()


def _image_batch(table: pa.Table, batch: range) -> pa.Table:
    images = pa.array([f"i{k:02d}" for k in batch])
    return table.filter(pc.is_in(table["image_id"], value_set=images))


def test_label_pair_counts_of_batches_add_up_to_the_whole() -> None:
    boxes = random_images()
    _, candidates = mine_pairs(boxes)
    whole = LabelPairCounts.of_images(boxes, candidates)
    assert whole.pairs.equals(pair_counts(candidates))
    assert whole.labels.equals(label_counts(boxes))
    parts = [
        LabelPairCounts.of_images(_image_batch(boxes, b), _image_batch(candidates, b))
        for b in (range(40, 60), range(0, 17), range(17, 40))
    ]
    for total in (LabelPairCounts.merge(parts), parts[2] + parts[0] + parts[1]):
        assert total.pairs.equals(whole.pairs) and total.labels.equals(whole.labels)
    thresholds = (NAMES, 5, 0.1)
    assert (
        LabelPairCounts.merge(parts)
        .to_label_pairs(*thresholds)
        .equals(label_pair_stats(pair_counts(candidates), label_counts(boxes), *thresholds))
    )


def test_label_pair_counts_merge_sums_equal_keys_and_sorts() -> None:
    a = LabelPairCounts(counts_table((CAR, WHEEL, 3, 1), (CAR, DOOR, 1, 1)), label_table((CAR, 2)))
    b = LabelPairCounts(counts_table((CAR, WHEEL, 2, 2)), label_table((WHEEL, 4), (CAR, 1)))
    total = a + b
    assert total.pairs.to_pylist() == [
        {"parent_label": CAR, "child_label": DOOR, "frequency": 1, "parents_with_child": 1},
        {"parent_label": CAR, "child_label": WHEEL, "frequency": 5, "parents_with_child": 3},
    ]
    assert total.labels.to_pylist() == [  # sorted by label id: WHEEL's sorts first
        {"label": WHEEL, "kept_boxes": 4},
        {"label": CAR, "kept_boxes": 3},
    ]
    assert total.pairs.schema == PAIR_COUNTS and total.labels.schema == LABEL_COUNTS
    empty = LabelPairCounts.merge([])
    assert empty.pairs.num_rows == empty.labels.num_rows == 0
    assert (empty + a).pairs.equals(LabelPairCounts.merge([a]).pairs)


def test_label_pair_counts_count_only_the_stats_splits() -> None:
    rows = three_cars().to_pylist()
    validation = [dict(row, split="validation", image_id="v" + row["image_id"]) for row in rows]
    boxes = index_boxes(pa.Table.from_pylist(rows + validation, schema=ROWS), 0.01)
    _, candidates = mine_pairs(boxes)
    train_only = LabelPairCounts.of_images(boxes, candidates, ["train"])
    both = LabelPairCounts.of_images(boxes, candidates)
    assert train_only.labels.to_pylist() == [
        {"label": WHEEL, "kept_boxes": 3},
        {"label": CAR, "kept_boxes": 3},
    ]
    assert both.labels.column("kept_boxes").to_pylist() == [6, 6]
    assert stats_row(train_only.to_label_pairs(NAMES, 1, 0.0), CAR, WHEEL)["frequency"] == 3
    assert in_splits(boxes, ["validation"]).column("image_id").to_pylist()[0] == "va"
    assert in_splits(boxes, []).num_rows == 0


def test_isa_blocked_pairs_pass_both_thresholds() -> None:
    counts = counts_table((CAR, DOOR, 10, 5), (CAR, WHEEL, 10, 5), (WHEEL, DOOR, 1, 1))
    table = label_pair_stats(
        counts, label_table((CAR, 10), (WHEEL, 10)), NAMES, 5, 0.1, {(CAR, WHEEL), (WHEEL, DOOR)}
    )
    # (WHEEL, DOOR) is is-a too, but fails the frequency threshold: not "blocked" by the guard.
    assert isa_blocked_pairs(table, 5, 0.1) == [(CAR, WHEEL)]
    assert isa_blocked_pairs(table, 11, 0.1) == []
    assert label_pair_summary(table) == {
        "candidate_label_pairs": 3,
        "accepted_label_pairs": 1,
        "isa_label_pairs": 2,
    }
    empty = label_pair_stats(PAIR_COUNTS.empty_table(), LABEL_COUNTS.empty_table(), NAMES)
    assert isa_blocked_pairs(empty, 5, 0.1) == []
    assert label_pair_summary(empty) == dict.fromkeys(label_pair_summary(table), 0)
