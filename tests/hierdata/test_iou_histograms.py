"""IoU histograms per label pair (hierdata.iou_histograms): bins, additivity, the median read off
the histogram and the near-duplicate share."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierdata import iou_histograms
from schemas.tables import IOU_BINS, PAIR_IOU_COUNTS, PAIRS


def candidates(ious: dict[tuple[str, str], list[float]]) -> pa.Table:
    rows = [
        {"split": "train", "image_id": f"i{n}", "kind": "box_box", "parent_box": 0,
         "child_box": 1, "parent_label": parent, "child_label": child, "containment": 1.0,
         "iou": iou}
        for (parent, child), values in ious.items() for n, iou in enumerate(values)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=PAIRS)


def test_bins_are_left_closed_and_one_falls_in_the_last() -> None:
    bins = iou_histograms.iou_bin(np.array([0.0, 0.0099, 0.01, 0.5, 0.74, 0.999, 1.0]))
    assert bins.tolist() == [0, 0, 1, 50, 74, 99, 99]
    assert IOU_BINS == 100


def test_counts_skip_image_box_rows_and_sort() -> None:
    table = candidates({("p", "c"): [0.3, 0.31, 0.305], ("a", "b"): [0.9]})
    image_box = pa.Table.from_pylist(
        [{**table.to_pylist()[0], "kind": "image_box", "parent_label": None}], schema=PAIRS
    )
    counts = iou_histograms.iou_counts(pa.concat_tables([table, image_box]))
    assert counts.schema == PAIR_IOU_COUNTS
    assert counts.to_pylist() == [
        {"parent_label": "a", "child_label": "b", "iou_bin": 90, "pairs": 1},
        {"parent_label": "p", "child_label": "c", "iou_bin": 30, "pairs": 2},
        {"parent_label": "p", "child_label": "c", "iou_bin": 31, "pairs": 1},
    ]


def test_median_is_interpolated_within_its_bin() -> None:
    # Four pairs: bins 10, 20, 20, 30. Half (2) is reached in bin 20, one pair into it of two:
    # 0.20 + 0.01 * (2 - 1) / 2. Near duplicates: IoU >= 0.5 exactly (0.5 counts).
    summary = iou_histograms.summarise(
        iou_histograms.iou_counts(
            candidates({("p", "c"): [0.105, 0.2, 0.205, 0.3], ("q", "d"): [0.5, 0.49]})
        )
    ).to_pylist()
    assert summary[0]["iou_median"] == pytest.approx(0.205)
    assert summary[0]["near_duplicate_share"] == 0.0
    assert summary[1]["near_duplicate_share"] == 0.5
    assert iou_histograms.summarise(PAIR_IOU_COUNTS.empty_table()).num_rows == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_median_within_one_bin_of_the_middle_value(ious: list[float]) -> None:
    """The histogram median lies in the bin of the ceil(n/2)-th smallest IoU, as does the
    N/2-th value: so within one bin width of the exact (lower) median."""
    summary = iou_histograms.summarise(iou_histograms.iou_counts(candidates({("p", "c"): ious})))
    values = np.sort(np.array(ious))
    middle = values[(len(values) - 1) // 2]
    assert abs(summary["iou_median"][0].as_py() - middle) <= 1 / IOU_BINS + 1e-12
    assert summary["near_duplicate_share"][0].as_py() == pytest.approx(np.mean(values >= 0.5))
