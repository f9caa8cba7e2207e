"""Image buckets: stable bucketing of image ids, and mining and finishing one bucket."""

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hierdata import buckets, cross_image, mining
from schemas import PAIRS, ROWS

CAR, WHEEL, DOOR = "/m/0k4j", "/m/083wq", "/m/02dgv"


def _fnv1a_64(text: str) -> int:
    """FNV-1a 64 as its specification writes it, one byte at a time."""
    digest = 0xCBF29CE484222325
    for byte in text.encode():
        digest = ((digest ^ byte) * 0x100000001B3) % (1 << 64)
    return digest


def _row(split: str, image_id: str, label: str, box: tuple, line: int) -> dict:
    xmin, xmax, ymin, ymax = box
    return {
        "split": split, "image_id": image_id, "label": label, "source": None,
        "confidence": None, "xmin": xmin, "xmax": xmax, "ymin": ymin, "ymax": ymax,
        "is_occluded": 0, "is_truncated": 0, "is_group_of": 0, "is_depiction": 0,
        "is_inside": 0, "file": f"{split}.csv", "line": line,
    }  # fmt: skip


def _rows() -> pa.Table:
    """Per split, images "a" (a car with a wheel and a tiny door) and "b" (a car, a wheel)."""
    rows = []
    for split in ("train", "validation"):
        rows += [
            _row(split, f"{split}_a", CAR, (0.0, 0.5, 0.0, 0.5), 2),
            _row(split, f"{split}_a", WHEEL, (0.0, 0.125, 0.375, 0.5), 3),
            _row(split, f"{split}_a", DOOR, (0.0, 0.05, 0.0, 0.05), 4),  # below min_box_area
            _row(split, f"{split}_b", CAR, (0.5, 1.0, 0.5, 1.0), 5),
            _row(split, f"{split}_b", WHEEL, (0.0, 0.25, 0.0, 0.25), 6),  # not in the car
        ]
    return pa.Table.from_pylist(rows, schema=ROWS)


@pytest.mark.parametrize(("csv_bytes", "expected"), [(0, 1), (4, 1), (5, 2), (400, 100)])
def test_bucket_count_is_ceil_of_bytes_over_bucket_size(csv_bytes: int, expected: int) -> None:
    assert buckets.bucket_count(csv_bytes, 4) == expected


def test_image_buckets_are_fnv1a_64_modulo_n() -> None:
    ids = ["0001eeaf4aed83f9", "a", "a", "Z-_9", "x" * 128, "0001eeaf4aed83f9"]
    for n in (1, 7, 560):
        got = buckets.image_buckets(pa.array(ids), n).tolist()
        assert got == [_fnv1a_64(i) % n for i in ids]
    chunked = pa.chunked_array([ids[:2], ids[2:]])
    assert buckets.image_buckets(chunked, 7).tolist() == [_fnv1a_64(i) % 7 for i in ids]


def test_split_by_bucket_keeps_images_whole_and_rows_in_order() -> None:
    rows = _rows()
    parts = list(buckets.split_by_bucket(rows, 3))
    assert [bucket for bucket, _ in parts] == sorted({bucket for bucket, _ in parts})
    assert sum(table.num_rows for _, table in parts) == rows.num_rows
    seen: dict[str, int] = {}
    for bucket, table in parts:
        lines = table.column("line").to_pylist()
        splits = table.column("split").to_pylist()
        # stable: within a split the original line order survives
        for split in set(splits):
            mine = [line for line, s in zip(lines, splits, strict=True) if s == split]
            assert mine == sorted(mine)
        for image in table.column("image_id").to_pylist():
            assert seen.setdefault(image, bucket) == bucket


def test_mine_bucket_counts_and_label_pairs_of_the_stats_splits() -> None:
    rows = _rows()
    mined = buckets.mine_bucket(7, [rows.slice(0, 4), rows.slice(4)], 0.01, 0.8, 0.9, ["train"])
    assert mined.part == "00007"
    assert mined.boxes.equals(mining.index_boxes(rows, 0.01))
    assert mined.counts == {
        "boxes": {"train": 5, "validation": 5},
        "kept_boxes": {"train": 4, "validation": 4},
        "images": {"train": 2, "validation": 2},
        "image_box_pairs": {"train": 4, "validation": 4},
        "candidate_pairs": {"train": 1, "validation": 1},
    }
    assert mined.candidates.column("child_label").to_pylist() == [WHEEL, WHEEL]
    # Only the train split counts: 2 Car boxes, one with a Wheel.
    counts = mined.label_pair_counts
    assert counts.pairs.to_pylist() == [
        {"parent_label": CAR, "child_label": WHEEL, "frequency": 1, "parents_with_child": 1,
         "children_with_parent": 1}
    ]  # fmt: skip
    assert dict(zip(*counts.labels.to_pydict().values(), strict=True)) == {CAR: 2, WHEEL: 2}


def _finish(accepted, plan_samples: bool):
    mined = buckets.mine_bucket(0, [_rows()], 0.01, 0.8, 0.9, ["train"])
    pool = cross_image.bucket_reservoirs(mined.boxes, pool=10, seed=0)
    reservoirs = cross_image.reservoirs_from_table(cross_image.reservoirs_to_table(pool))
    return mined, buckets.finish_bucket(mined, accepted, reservoirs, 1, 0, plan_samples)


def test_finish_bucket_keeps_accepted_pairs_and_plans_one_sample_per_image() -> None:
    mined, finished = _finish({(CAR, WHEEL)}, plan_samples=True)
    assert finished.part == mined.part
    assert finished.pairs.schema == PAIRS
    kinds = finished.pairs.column("kind").to_pylist()
    assert kinds.count("image_box") == 8 and kinds.count("box_box") == 2
    # Each image's tree: the wheel of image a hangs under its car.
    a_wheel = finished.image_trees.filter(
        pc.and_(pc.equal(finished.image_trees["image_id"], "train_a"),
                pc.equal(finished.image_trees["label"], WHEEL))
    )  # fmt: skip
    assert a_wheel.column("parent_box").to_pylist() == [0]
    assert [(p.split, p.image_id) for p in finished.plans] == [
        ("train", "train_a"),
        ("train", "train_b"),
        ("validation", "validation_a"),
        ("validation", "validation_b"),
    ]
    # Each image gets a box of each of its labels from the other image of its split.
    assert finished.cross_pairs.num_rows == 8
    assert len(finished.crop_requests) == finished.cross_pairs.num_rows
    assert finished.counts == {
        "accepted_pairs": {"train": 1, "validation": 1},
        "cross_image_pairs": {"train": 4, "validation": 4},
        "samples_planned": {"train": 2, "validation": 2},
    }


def test_finish_bucket_without_shards_plans_nothing() -> None:
    _, finished = _finish(frozenset(), plan_samples=False)
    assert finished.plans == [] and finished.crop_requests == []
    assert finished.counts["samples_planned"] == {}
    assert finished.counts["accepted_pairs"] == {}
    assert finished.pairs.column("kind").to_pylist() == ["image_box"] * 8
