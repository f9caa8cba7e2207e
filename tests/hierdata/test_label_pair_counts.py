"""stats.LabelPairCounts: the one additive type of label-pair counts that Beam combines."""

import pyarrow as pa
import pyarrow.compute as pc

from hierdata.mining import index_boxes, mine_pairs
from hierdata.stats import (
    LabelPairCounts,
    in_splits,
    label_counts,
    label_pair_stats,
    pair_counts,
)
from schemas import LABEL_COUNTS, PAIR_COUNTS, PAIR_IOU_COUNTS, ROWS
from tests.hierdata.test_stats import (
    CAR,
    DOOR,
    NAMES,
    WHEEL,
    counts,
    random_images,
    stats_row,
    three_cars,
)


def _image_batch(table: pa.Table, batch: range) -> pa.Table:
    images = pa.array([f"i{k:02d}" for k in batch])
    return table.filter(pc.is_in(table["image_id"], value_set=images))


def test_label_pair_counts_of_batches_add_up_to_the_whole() -> None:
    boxes = random_images()
    _, candidates = mine_pairs(boxes)
    whole = LabelPairCounts.of_images(boxes, candidates)
    assert whole.pairs.equals(pair_counts(candidates))
    assert whole.labels.equals(label_counts(boxes))
    assert whole.ious.num_rows > whole.pairs.num_rows  # several IoU bins per label pair
    parts = [
        LabelPairCounts.of_images(_image_batch(boxes, b), _image_batch(candidates, b))
        for b in (range(40, 60), range(0, 17), range(17, 40))
    ]
    for total in (LabelPairCounts.merge(parts), parts[2] + parts[0] + parts[1]):
        assert total.pairs.equals(whole.pairs) and total.labels.equals(whole.labels)
        assert total.ious.equals(whole.ious)
    thresholds = (NAMES, 5, 0.1, 0.7)
    assert (
        LabelPairCounts.merge(parts)
        .to_label_pairs(*thresholds)
        .equals(label_pair_stats(whole, *thresholds))
    )


def test_label_pair_counts_merge_sums_equal_keys_and_sorts() -> None:
    a = counts((CAR, WHEEL, 3, 1, 2), (CAR, DOOR, 1, 1), labels={CAR: 2}, iou=0.2)
    b = counts((CAR, WHEEL, 2, 2), labels={WHEEL: 4, CAR: 1}, iou=0.25)
    total = a + b
    assert total.pairs.to_pylist() == [
        {"parent_label": CAR, "child_label": DOOR, "frequency": 1, "parents_with_child": 1,
         "children_with_parent": 1},
        {"parent_label": CAR, "child_label": WHEEL, "frequency": 5, "parents_with_child": 3,
         "children_with_parent": 4},
    ]  # fmt: skip
    assert total.labels.to_pylist() == [  # sorted by label id: WHEEL's sorts first
        {"label": WHEEL, "kept_boxes": 4},
        {"label": CAR, "kept_boxes": 3},
    ]
    assert total.ious.to_pylist() == [  # histograms add bin by bin
        {"parent_label": CAR, "child_label": DOOR, "iou_bin": 20, "pairs": 1},
        {"parent_label": CAR, "child_label": WHEEL, "iou_bin": 20, "pairs": 3},
        {"parent_label": CAR, "child_label": WHEEL, "iou_bin": 25, "pairs": 2},
    ]
    assert total.pairs.schema == PAIR_COUNTS and total.labels.schema == LABEL_COUNTS
    assert total.ious.schema == PAIR_IOU_COUNTS
    empty = LabelPairCounts.merge([])
    assert empty.pairs.num_rows == empty.labels.num_rows == empty.ious.num_rows == 0
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
    assert stats_row(train_only.to_label_pairs(NAMES, 1, 0.0, 0.7), CAR, WHEEL)["frequency"] == 3
    assert in_splits(boxes, ["validation"]).column("image_id").to_pylist()[0] == "va"
    assert in_splits(boxes, []).num_rows == 0
