"""Tests for training.data: shard lists, epoch sizes, rank/worker splitting, streams, resume.

Shards come from the real pipeline run on a small synthetic dataset (tests/training/conftest.py).
"""

import json
from collections import Counter
from pathlib import Path

import fsspec
import pytest
import torch

from hierdata.errors import InputError
from tests.training.conftest import TRAIN_IMAGES, TRAIN_SHARDS, pair_ids
from training import data
from training.data import (
    DataState,
    PairStream,
    epoch_samples,
    expand_shards,
    make_loader,
    read_samples,
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


def _stream(urls, **kw) -> PairStream:
    options = {"batch_pairs": 64, "image_size": 32, "shuffle_buffer": 16, "epochs": 1}
    return PairStream(list(urls), **{**options, **kw})


def test_rank_and_worker_split_yields_every_pair_exactly_once(urls, all_pairs):
    """2 ranks x 2 workers over 3 shards: rank 1's second worker has none and yields nothing."""
    seen, samples = Counter(), 0
    for rank in range(2):
        stream = _stream(urls, rank=rank, world_size=2, state=DataState.start(2))
        for batch in make_loader(stream, num_workers=2):
            seen.update(pair_ids(batch.crops, batch.parent_index, batch.child_index))
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
    pairs = pair_ids(batch.crops, batch.parent_index, batch.child_index)
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
            per_epoch[plan_epoch] += pair_ids(plan.crops, plan.parent_index, plan.child_index)
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
