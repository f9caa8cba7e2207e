"""The cross-image draw (DESIGN "Rules", Cross-image): distinct boxes of the scene's label from
other images of the same split, seeded by (seed, image, label) only.
"""

from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hierdata.cross_image import bucket_reservoirs, sample_cross_image
from hierdata.input_files import read_class_descriptions
from hierdata.mining import index_boxes
from hierdata.readers import read_boxes_file
from schemas.tables import CROSS_PAIRS
from tests.hierdata.cross_image.helpers import by_key, make_boxes


def test_never_samples_from_the_same_image():
    images = [f"i{i}" for i in range(40) for _ in range(3)]  # three /m/x boxes per image
    boxes = make_boxes(images, ["/m/x"] * len(images))
    reservoirs = by_key(bucket_reservoirs(boxes, 1000, seed=0))
    assert len(reservoirs[("train", "/m/x")]) == 120  # every image's own boxes are in the pool
    out = sample_cross_image(boxes, reservoirs, 3, seed=0).to_pylist()
    assert len(out) == 40 * 3
    assert all(row["source_image_id"] != row["image_id"] for row in out)


def test_takes_every_eligible_box_when_samples_exceed_them():
    # Scene "own" has three boxes of /m/x scattered through the reservoir; three others one each.
    boxes = make_boxes(["own", "a", "own", "b", "own", "c"], ["/m/x"] * 6)
    reservoirs = by_key(bucket_reservoirs(boxes, 100, seed=5))
    out = sample_cross_image(boxes, reservoirs, 10, seed=5).to_pylist()
    own = [(r["source_image_id"], r["source_box_id"]) for r in out if r["image_id"] == "own"]
    assert sorted(own) == [("a", 0), ("b", 0), ("c", 0)]  # without replacement, all of them
    assert [r["slot"] for r in out if r["image_id"] == "own"] == [0, 1, 2]
    from_a = sorted((r["source_image_id"], r["source_box_id"]) for r in out if r["image_id"] == "a")
    assert from_a == [("b", 0), ("c", 0), ("own", 0), ("own", 1), ("own", 2)]


def test_samples_are_distinct_from_the_pool_with_the_scene_label(two_splits):
    reservoirs = by_key(bucket_reservoirs(two_splits, 5, seed=1))
    out = sample_cross_image(two_splits, reservoirs, 3, seed=1)
    assert out.schema.equals(CROSS_PAIRS) and out.num_rows > 0
    label_of = {
        (r["split"], r["image_id"], r["box_id"]): r["label"] for r in two_splits.to_pylist()
    }
    per_pair = defaultdict(list)
    for row in out.to_pylist():
        pool = reservoirs[(row["split"], row["label"])]
        source = (row["source_image_id"], row["source_box_id"])
        assert source in set(zip(pool.image_id.tolist(), pool.box_id.tolist(), strict=True))
        assert label_of[(row["split"], *source)] == row["label"]
        per_pair[(row["split"], row["image_id"], row["label"])].append(source)
    for (split, image, label), sources in per_pair.items():
        pool = reservoirs[(split, label)]
        assert len(set(sources)) == len(sources) == min(3, int(np.sum(pool.image_id != image)))


def test_every_scene_label_is_served():
    boxes = make_boxes(
        ["s", "s", "s", "t", "u"],
        ["/m/x", "/m/y", "/m/z", "/m/x", "/m/y"],
        is_group_of=[1, 0, 0, 0, 0],
    )
    out = sample_cross_image(boxes, by_key(bucket_reservoirs(boxes, 10, 0)), 1, 0).to_pylist()
    # A group box still puts its label among the scene's labels; /m/z has no other image.
    assert [(r["image_id"], r["label"], r["source_image_id"]) for r in out] == [
        ("s", "/m/x", "t"),
        ("s", "/m/y", "u"),
        ("u", "/m/y", "s"),
    ]


def test_a_reservoir_of_only_the_scene_own_boxes_gives_no_sample():
    boxes = make_boxes(["solo"] * 4, ["/m/x"] * 4)
    reservoirs = by_key(bucket_reservoirs(boxes, 10, seed=0))
    assert len(reservoirs[("train", "/m/x")]) == 4
    assert sample_cross_image(boxes, reservoirs, 5, seed=0).num_rows == 0
    assert sample_cross_image(boxes, {}, 5, seed=0).num_rows == 0


def test_other_splits_are_never_sampled(two_splits):
    out = sample_cross_image(two_splits, by_key(bucket_reservoirs(two_splits, 50, 0)), 2, 0)
    for row in out.to_pylist():
        assert row["source_image_id"][:2] == row["split"][:2]  # ids carry their split's prefix


def test_keys_number_the_scene_pairs_in_label_then_slot_order(two_splits):
    out = sample_cross_image(two_splits, by_key(bucket_reservoirs(two_splits, 50, 0)), 2, 0)
    rows = out.to_pylist()
    order = [(r["split"], r["image_id"], r["label"], r["slot"]) for r in rows]
    assert order == sorted(order) and len(set(order)) == len(order)
    per_image = defaultdict(list)
    for row in rows:
        per_image[(row["split"], row["image_id"])].append(row)
    for pairs in per_image.values():
        assert [r["key"] for r in pairs] == [f"x{i:03d}" for i in range(len(pairs))]
        assert [r["slot"] for r in pairs if r["label"] == pairs[0]["label"]] == [0, 1]


def test_draw_depends_only_on_seed_image_and_label(two_splits):
    reservoirs = by_key(bucket_reservoirs(two_splits, 50, seed=4))
    whole = sample_cross_image(two_splits, reservoirs, 2, seed=4)
    images = sorted(set(two_splits["image_id"].to_pylist()))
    halves = [images[0::2], images[1::2]]  # bundles of whole images, interleaved
    parts = [
        sample_cross_image(
            two_splits.filter(pc.is_in(two_splits["image_id"], pa.array(half))), reservoirs, 2, 4
        )
        for half in halves
    ]
    assert sorted(pa.concat_tables(parts).to_pylist(), key=str) == sorted(
        whole.to_pylist(), key=str
    )
    again = sample_cross_image(two_splits, reservoirs, 2, seed=4)
    other = sample_cross_image(two_splits, reservoirs, 2, seed=5)
    assert again.equals(whole) and not other.equals(whole)
    assert other.num_rows == whole.num_rows  # the seed changes the choice, not the counts


def test_draws_are_uniform_over_the_other_images_boxes():
    # 3000 scenes whose only /m/x box is a group box (so not in the pool) and 4 source boxes.
    scenes = [f"s{i:04d}" for i in range(3000)]
    boxes = make_boxes(
        [*scenes, "a", "b", "c", "d"], ["/m/x"] * 3004, is_group_of=[1] * 3000 + [0] * 4
    )
    out = sample_cross_image(boxes, by_key(bucket_reservoirs(boxes, 10, 0)), 1, seed=0)
    counts = Counter(out["source_image_id"].to_pylist())
    assert sorted(counts) == ["a", "b", "c", "d"]
    assert all(650 <= n <= 850 for n in counts.values())  # 750 expected, sd 24


def test_real_fruit_and_spoon_boxes(shared_data):
    labels = read_class_descriptions(
        str(shared_data / "openimages-v4-meta" / "class-descriptions-boxable.csv")
    )
    rows, _ = read_boxes_file(
        str(shared_data / "openimages-v4-crlf" / "validation-annotations-bbox.csv"),
        "validation",
        labels,
    )
    boxes = index_boxes(rows, 0.01)
    reservoirs = by_key(bucket_reservoirs(boxes, 50, seed=0))
    source = {(r["image_id"], r["box_id"]): r for r in boxes.to_pylist()}
    eligible = Counter(r["label"] for r in source.values() if r["kept"] and r["is_group_of"] != 1)
    assert {key[1]: len(r) for key, r in reservoirs.items()} == {
        label: min(50, n) for label, n in eligible.items()
    }
    for reservoir in reservoirs.values():
        for i, (image, box_id) in enumerate(zip(reservoir.image_id, reservoir.box_id, strict=True)):
            box = source[(image, box_id)]
            assert box["label"] == reservoir.label and box["is_group_of"] != 1
            assert [box[c] for c in ("xmin", "xmax", "ymin", "ymax")] == [
                reservoir.xmin[i],
                reservoir.xmax[i],
                reservoir.ymin[i],
                reservoir.ymax[i],
            ]
    out = sample_cross_image(boxes, reservoirs, 2, seed=0)
    scenes = {(r["image_id"], r["label"]) for r in source.values() if r["kept"]}
    assert len(out) == 2 * len(scenes)
    for row in out.to_pylist():
        box = source[(row["source_image_id"], row["source_box_id"])]
        assert box["label"] == row["label"] and box["kept"] and box["is_group_of"] != 1
        assert row["source_image_id"] != row["image_id"]
