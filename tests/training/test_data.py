"""Tests for training.data: shard lists, rank/worker splitting, pair batches, resume, augmentation.

Shards come from the real pipeline run on a small synthetic dataset (module fixture, ~15 s).
"""

import io
import json
from collections import Counter
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch
from PIL import Image

from hierdata.errors import InputError
from tests.training.conftest import TRAIN_IMAGES, TRAIN_SHARDS
from training import data
from training.data import (
    Augment,
    DataState,
    PairStream,
    epoch_samples,
    expand_shards,
    make_loader,
    pack_pairs,
    plan_batch,
    read_samples,
    sample_pairs,
)


@pytest.fixture(scope="module")
def shard_dir(tiny_run) -> Path:
    return tiny_run.train_dir


@pytest.fixture(scope="module")
def urls(tiny_run) -> list[str]:
    return expand_shards(tiny_run.shards)


@pytest.fixture(scope="module")
def all_pairs(urls) -> Counter:
    """Every (parent, child) crop-id pair in the shards, read straight from the tars."""
    return Counter(pair for sample in read_samples(urls) for pair in sample.pairs)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "s-{000008..000011}.tar",
            ["s-000008.tar", "s-000009.tar", "s-000010.tar", "s-000011.tar"],
        ),
        ("gs://b/t-{0..1}.tar,/x/e.tar", ["gs://b/t-0.tar", "gs://b/t-1.tar", "/x/e.tar"]),
        ("d/{a,b}-{1..2}.tar", ["d/a-1.tar", "d/a-2.tar", "d/b-1.tar", "d/b-2.tar"]),
        (" one.tar , two.tar ", ["one.tar", "two.tar"]),
    ],
)
def test_expand_shards_brace_ranges_and_comma_lists(spec, expected):
    assert expand_shards(spec) == expected


@pytest.mark.parametrize("spec", ["", " , ", "a-{0..1}.tar,a-1.tar"])
def test_expand_shards_rejects_empty_and_duplicate_specs(spec):
    with pytest.raises(InputError):
        expand_shards(spec)


def test_epoch_size_is_the_sum_of_sizes_json(shard_dir, urls):
    sizes = json.loads((shard_dir / "sizes.json").read_text())
    assert len(urls) == 3
    assert epoch_samples(urls) == sum(sizes.values()) == TRAIN_IMAGES
    assert epoch_samples(urls[1:]) == TRAIN_IMAGES - sizes["train-000000.tar"]
    with pytest.raises(InputError, match="not listed"):
        epoch_samples([str(shard_dir / "train-000099.tar")])


def _pair_ids(crops, parent_index, child_index) -> list:
    """(parent crop id, child crop id) of each pair of a batch or plan."""
    parents, children = np.asarray(parent_index).tolist(), np.asarray(child_index).tolist()
    return [(crops[p], crops[c]) for p, c in zip(parents, children, strict=True)]


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
    pairs = set(_pair_ids(names, plan.parent_index, plan.child_index))
    assert pairs == positives - {("B/img", "A/b001")}  # that one comes from the rule alone
    assert plan.samples_completed == 2


def test_pack_pairs_fills_batches_exactly_and_splits_a_sample():
    batches = list(pack_pairs(_hand_samples(), batch_pairs=3))
    spans = [[(sample.image_id, start, stop) for sample, start, stop in b] for b in batches]
    assert spans == [[("A", 0, 3)], [("A", 3, 4), ("B", 0, 2)]]
    assert [plan_batch(b).samples_completed for b in batches] == [0, 2]


def _stream(urls, **kw) -> PairStream:
    options = {"batch_pairs": 64, "image_size": 32, "shuffle_buffer": 16, "epochs": 1}
    return PairStream(list(urls), **{**options, **kw})


def test_rank_and_worker_split_yields_every_pair_exactly_once(urls, all_pairs):
    """2 ranks x 2 workers over 3 shards: rank 1's second worker has none and yields nothing."""
    seen, samples = Counter(), 0
    for rank in range(2):
        stream = _stream(urls, rank=rank, world_size=2, state=DataState.start(2))
        for batch in make_loader(stream, num_workers=2):
            seen.update(_pair_ids(batch.crops, batch.parent_index, batch.child_index))
            samples += batch.samples_completed
    assert seen == all_pairs
    assert max(all_pairs.values()) == 1
    assert samples == sum(1 for sample in read_samples(urls) if sample.pairs)


def test_each_unique_crop_is_decoded_once_per_batch(urls, monkeypatch):
    decoded = []

    def counting_letterbox(jpeg, size, fill):
        decoded.append(jpeg)
        return real_letterbox(jpeg, size, fill)

    real_letterbox = data.letterbox
    monkeypatch.setattr(data, "letterbox", counting_letterbox)
    batch = next(iter(_stream(urls, batch_pairs=200, shuffle=False)))
    pairs = _pair_ids(batch.crops, batch.parent_index, batch.child_index)
    members = {crop for pair in pairs for crop in pair}
    assert len(decoded) == batch.pixels.shape[0] == len(batch.crops) == len(members)
    assert len(pairs) == 200
    assert 2 * len(pairs) / len(decoded) >= 1.8  # one pass per crop, not per pair member
    assert batch.pixels.dtype == torch.uint8 and batch.pixels.shape[1:] == (3, 32, 32)


def test_fsspec_urls_stream_like_local_paths(shard_dir, urls):
    memory = fsspec.filesystem("memory")
    for path in sorted(shard_dir.glob("*.tar")) + [shard_dir / "sizes.json"]:
        memory.pipe_file(f"/shards/{path.name}", path.read_bytes())
    remote = expand_shards("memory://shards/" + TRAIN_SHARDS)
    assert epoch_samples(remote) == TRAIN_IMAGES
    local_batch = next(iter(_stream(urls, shuffle=False)))
    remote_batch = next(iter(_stream(remote, shuffle=False)))
    assert remote_batch.crops == local_batch.crops
    assert torch.equal(remote_batch.pixels, local_batch.pixels)


def test_epochs_reshuffle_but_cover_the_same_pairs(urls, all_pairs):
    stream = _stream(urls, epochs=2)
    per_epoch = {0: [], 1: []}
    for plan_epoch in (0, 1):
        for plan in stream.plans(plan_epoch, 0, 1):
            per_epoch[plan_epoch] += _pair_ids(plan.crops, plan.parent_index, plan.child_index)
    assert Counter(per_epoch[0]) == Counter(per_epoch[1]) == all_pairs
    assert per_epoch[0] != per_epoch[1]


def test_resumed_stream_continues_with_the_same_batches(urls):
    """Exact resume across workers and an epoch boundary: state after k batches, then m more."""
    k, m, workers = 7, 6, 2
    options = {"batch_pairs": 400, "epochs": None, "state": DataState.start(workers)}
    reference = []
    for batch in make_loader(_stream(urls, **options), workers):
        reference.append(batch)
        if len(reference) == k + m:
            break
    state = DataState.start(workers)
    for batch in reference[:k]:
        state.advance(batch)
    assert len(set(state.epochs)) > 1 or max(state.epochs) > 0, "k must cross an epoch"
    resumed = []
    for batch in make_loader(_stream(urls, **{**options, "state": state}), workers):
        resumed.append(batch)
        if len(resumed) == m:
            break
    for expected, got in zip(reference[k:], resumed, strict=True):
        assert (got.worker, got.epoch, got.index) == (
            expected.worker,
            expected.epoch,
            expected.index,
        )
        assert got.crops == expected.crops
        assert torch.equal(got.pixels, expected.pixels)


def test_data_state_round_trips_through_a_tensor():
    state = DataState([3, 4], [10, 0], next_worker=1)
    assert DataState.from_tensor(state.to_tensor()) == state
    assert state.to_tensor().dtype == torch.int64


def test_letterbox_keeps_aspect_ratio_and_fills_with_the_mean_colour():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(buffer, "JPEG", quality=95)
    square = data.letterbox(buffer.getvalue(), 16, (10, 20, 30))
    assert square.shape == (16, 16, 3) and square.dtype == np.uint8
    # 40x20 -> 16x8, centred: rows 0-3 and 12-15 are fill, rows 4-11 red.
    np.testing.assert_array_equal(square[:4], np.broadcast_to([10, 20, 30], (4, 16, 3)))
    np.testing.assert_array_equal(square[12:], np.broadcast_to([10, 20, 30], (4, 16, 3)))
    assert (square[5:11, :, 0] > 230).all() and (square[5:11, :, 1:] < 30).all()


def test_augment_normalises_in_eval_and_randomises_in_training():
    mean, std = (0.5, 0.25, 0.75), (0.2, 0.1, 0.3)
    pixels = torch.tensor(data.mean_colour(mean), dtype=torch.uint8)[None, :, None, None]
    pixels = pixels.expand(4, 3, 40, 40).contiguous()
    augment = Augment(32, mean, std).eval()
    plain = augment(pixels)
    assert plain.shape == (4, 3, 32, 32) and plain.dtype == torch.float32
    assert plain.abs().max() < 0.03  # the mean colour normalises to ~0
    varied = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    augment.train()
    torch.manual_seed(0)
    first = augment(varied)
    torch.manual_seed(0)
    again = augment(varied)
    assert torch.equal(first, again)  # seeded by torch's global RNG (checkpointed by train)
    assert not torch.allclose(first, augment.eval()(varied))
