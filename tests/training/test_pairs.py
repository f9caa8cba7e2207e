"""Tests for training.pairs: a sample's pairs with canonical crop ids, batch packing, and the
positive mask (explicit pairs plus the cross-image rule), on hand-made samples.
"""

import numpy as np

from tests.training.conftest import pair_ids
from training.pairs import pack_pairs, plan_batch, sample_pairs


def _hand_samples():
    """Image A (car with a wheel, plus a cross-image wheel = B's b001) and image B."""
    image_a = {
        "image_id": "A", "labels": ["/m/car", "/m/wheel"],
        "boxes": [{"key": "b000", "label": "/m/car"}, {"key": "b001", "label": "/m/wheel"}],
        "cross": [{"key": "x000", "label": "/m/wheel", "source_image_id": "B",
                   "source_box_id": 1}],
        "pairs": [{"parent": "img", "child": "b000"}, {"parent": "img", "child": "b001"},
                  {"parent": "b000", "child": "b001"}, {"parent": "img", "child": "x000"}],
    }  # fmt: skip
    image_b = {
        "image_id": "B", "labels": ["/m/person", "/m/wheel"],
        "boxes": [{"key": "b000", "label": "/m/person"}, {"key": "b001", "label": "/m/wheel"}],
        "cross": [],
        "pairs": [{"parent": "img", "child": "b000"}, {"parent": "img", "child": "b001"}],
    }  # fmt: skip
    return sample_pairs(image_a), sample_pairs(image_b)


def test_positive_mask_explicit_pairs_plus_cross_image_rule_by_hand():
    plan = plan_batch(next(pack_pairs(_hand_samples(), batch_pairs=10)))
    names = ["A/img", "A/b000", "A/b001", "B/b001", "B/img", "B/b000"]
    assert ["/".join(crop) for crop in plan.crops] == names  # A's x000 is B's b001: one crop
    positives = {
        ("A/img", "A/b000"), ("A/img", "A/b001"), ("A/img", "B/b001"),  # A's labels: car, wheel
        ("A/b000", "A/b001"),  # the box ⊃ box pair
        ("B/img", "B/b000"), ("B/img", "B/b001"), ("B/img", "A/b001"),  # B's: person, wheel
    }  # fmt: skip
    expected = np.array([[(p, c) in positives for c in names] for p in names])
    np.testing.assert_array_equal(plan.positive_mask, expected)
    assert not plan.positive_mask.diagonal().any()
    pairs = set(pair_ids(names, plan.parent_index, plan.child_index))
    assert pairs == positives - {("B/img", "A/b001")}  # that one comes from the rule alone
    assert plan.samples_completed == 2


def test_pack_pairs_fills_batches_exactly_and_splits_a_sample():
    batches = list(pack_pairs(_hand_samples(), batch_pairs=3))
    spans = [[(sample.image_id, start, stop) for sample, start, stop in b] for b in batches]
    assert spans == [[("A", 0, 3)], [("A", 3, 4), ("B", 0, 2)]]
    assert [plan_batch(b).samples_completed for b in batches] == [0, 2]
