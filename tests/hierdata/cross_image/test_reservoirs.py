"""Cross-image reservoirs (DESIGN "Rules", Cross-image): per-label bottom-k samples that do not
depend on bundling or merge order, with priorities stable across processes and releases.
"""

import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierdata.cross_image import (
    bucket_reservoirs,
    merge_reservoirs,
    reservoirs_from_table,
    reservoirs_to_table,
    sample_cross_image,
)
from hierdata.cross_image import reservoirs as reservoir_module
from tests.hierdata.cross_image.helpers import FIELDS, assert_same, by_key, make_boxes

ROOT = Path(__file__).resolve().parents[3]


def test_reservoir_is_independent_of_bundling_and_merge_order(two_splits):
    whole = by_key(bucket_reservoirs(two_splits, 25, seed=3))
    rng = random.Random(0)
    for _ in range(4):
        shuffled = two_splits.take(
            pa.array(rng.sample(range(two_splits.num_rows), two_splits.num_rows))
        )
        cuts = sorted(rng.sample(range(1, shuffled.num_rows), rng.randint(1, 6)))
        bounds = [0, *cuts, shuffled.num_rows]
        parts = [shuffled.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        pending = defaultdict(list)
        for part in parts:
            for reservoir in bucket_reservoirs(part, 25, seed=3):
                pending[(reservoir.split, reservoir.label)].append(reservoir)
        merged = {}
        for key, found in pending.items():
            while len(found) > 1:  # a random merge tree, like a runner's combiner lifting
                rng.shuffle(found)
                found.append(merge_reservoirs([found.pop(), found.pop()], 25))
            merged[key] = found[0]
        assert merged.keys() == whole.keys()
        for key in whole:
            assert_same(merged[key], whole[key])
        assert sample_cross_image(two_splits, merged, 2, 3).equals(
            sample_cross_image(two_splits, whole, 2, 3)
        )


def test_reservoir_is_the_pool_smallest_priorities_of_eligible_boxes(two_splits):
    everything = by_key(bucket_reservoirs(two_splits, 10**6, seed=0))
    small = by_key(bucket_reservoirs(two_splits, 7, seed=0))
    assert small.keys() == everything.keys()
    rows = two_splits.to_pylist()
    for (split, label), full in everything.items():
        eligible = {
            (r["image_id"], r["box_id"])
            for r in rows
            if r["split"] == split and r["label"] == label and r["kept"] and r["is_group_of"] != 1
        }
        assert set(zip(full.image_id.tolist(), full.box_id.tolist(), strict=True)) == eligible
        assert np.all(np.diff(full.priority.astype(np.float64)) >= 0)
        assert len(small[(split, label)]) == min(7, len(eligible))
        for name in FIELDS:
            np.testing.assert_array_equal(
                getattr(small[(split, label)], name), getattr(full, name)[:7]
            )


def test_group_and_dropped_boxes_never_enter_the_reservoir():
    boxes = make_boxes(
        ["a", "b", "c", "d"],
        ["/m/x"] * 4,
        kept=[True, True, False, True],
        is_group_of=[0, 1, 0, -1],
    )
    (reservoir,) = bucket_reservoirs(boxes, 10, seed=0)
    assert sorted(reservoir.image_id.tolist()) == ["a", "d"]  # unknown (-1) is a single object
    assert reservoir.xmax.tolist() == [0.5, 0.5] and reservoir.box_id.dtype == np.int32


def test_priority_ties_break_by_image_then_box():
    # 64-bit ties are all but impossible from the hash, so the rule is checked on its helper.
    image_id = pa.array(["b", "a", "c", "a", "b"])
    rows = reservoir_module._bottom_k(
        np.zeros(5, dtype=np.int64),
        np.full(5, 9, dtype=np.uint64),
        image_id,
        np.array([0, 1, 0, 0, 2], dtype=np.int32),
        3,
    )
    assert rows.tolist() == [3, 1, 0]  # (a, 0), (a, 1), (b, 0)


def test_priority_is_stable_across_processes_and_releases():
    code = (
        "from tests.hierdata.cross_image.helpers import make_boxes;"
        "from hierdata.cross_image import bucket_reservoirs as b;"
        "print(b(make_boxes(['img1','img2'], ['/m/x','/m/x']), 5, 7)[0].priority.tolist())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    other = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    (reservoir,) = bucket_reservoirs(make_boxes(["img1", "img2"], ["/m/x", "/m/x"]), 5, 7)
    assert other == str(reservoir.priority.tolist())
    # Pinned: a changed hash or generator silently changes every published dataset.
    assert reservoir.priority.tolist() == [1038787399509836313, 10507494310811904684]
    boxes = make_boxes(["scene", *"abcdefgh"], ["/m/x"] * 9)
    out = sample_cross_image(boxes, by_key(bucket_reservoirs(boxes, 9, 7)), 3, 7)
    scene = out.filter(pc.equal(out["image_id"], "scene"))
    assert scene["source_image_id"].to_pylist() == ["c", "h", "d"]


def test_a_different_seed_gives_a_different_reservoir(two_splits):
    first = by_key(bucket_reservoirs(two_splits, 5, seed=0))
    second = by_key(bucket_reservoirs(two_splits, 5, seed=1))
    assert any(set(first[k].image_id.tolist()) != set(second[k].image_id.tolist()) for k in first)


def test_reservoirs_survive_a_table_round_trip_in_any_row_order(two_splits):
    reservoirs = bucket_reservoirs(two_splits, 9, seed=2)
    table = reservoirs_to_table(reservoirs)
    assert table.num_rows == sum(len(r) for r in reservoirs)
    shuffled = table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows)))
    back = reservoirs_from_table(shuffled)
    assert back.keys() == by_key(reservoirs).keys()
    for reservoir in reservoirs:
        assert_same(back[(reservoir.split, reservoir.label)], reservoir)


def test_bad_counts_and_mixed_merges_are_rejected():
    boxes = make_boxes(["a", "b"], ["/m/x", "/m/y"])
    with pytest.raises(ValueError, match="pool"):
        bucket_reservoirs(boxes, -1, 0)
    with pytest.raises(ValueError, match="samples"):
        sample_cross_image(boxes, {}, -1, 0)
    with pytest.raises(ValueError, match="different"):
        merge_reservoirs(bucket_reservoirs(boxes, 5, 0), 5)
    with pytest.raises(ValueError, match="at least one"):
        merge_reservoirs([], 5)
    assert bucket_reservoirs(boxes, 0, 0) == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.integers(0, 2),
            st.booleans(),
            st.integers(-1, 1),
            st.integers(0, 3),
        ),
        max_size=40,
    ),
    st.integers(0, 8),
    st.integers(0, 2**32),
)
def test_merge_of_any_partition_is_the_reservoir_of_the_union(boxes, pool, seed):
    table = make_boxes(
        [f"i{b[0]}" for b in boxes],
        [f"/m/l{b[1]}" for b in boxes],
        kept=[b[2] for b in boxes],
        is_group_of=[b[3] for b in boxes],
    )
    part_of = np.array([b[4] for b in boxes], dtype=np.int64)
    whole = by_key(bucket_reservoirs(table, pool, seed))
    pending = defaultdict(list)
    for part in range(4):
        for reservoir in bucket_reservoirs(table.filter(pa.array(part_of == part)), pool, seed):
            pending[(reservoir.split, reservoir.label)].append(reservoir)
    assert pending.keys() == whole.keys()
    for key, reservoir in whole.items():
        assert_same(merge_reservoirs(reversed(pending[key]), pool), reservoir)
        eligible = sum(1 for b in boxes if f"/m/l{b[1]}" == key[1] and b[2] and b[3] != 1)
        assert len(reservoir) == min(pool, eligible)
