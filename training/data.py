"""The shard loader for training: shard lists, epoch sizes, and streams of pair batches.

Streams WebDataset shards (local paths or fsspec URLs) and yields PairBatch objects for the loop.

Pipeline, per rank and DataLoader worker, per epoch: shard list shuffled by (seed, epoch), split
by rank then by worker -> tars read with webdataset's tariterators through fsspec streams ->
samples parsed (schemas/sample.py) -> a shuffle buffer of samples -> samples expanded into their
pairs and packed, in order, into batches of ``batch_pairs`` pairs (training.pairs: a sample may
straddle two batches; the last batch of an epoch may be short) -> every unique crop of a batch
decoded once with PIL and letterboxed to a fixed square -> uint8 tensors. Augmentation
(training.images.Augment) runs after that on the training device, on whole batches.

Exact resume. Each stream is a pure function of (seed, epoch, rank, worker): nothing depends on
timing or process ids. DataLoader hands out batches of an iterable dataset round-robin over its
workers (skipping workers that have none), so ``DataState`` records, per worker, the epoch in
progress and how many of its batches the trainer consumed, plus the worker whose batch is next.
A resumed stream rotates the workers so that one comes first and lets each worker re-read its
epoch, skipping consumed batches before any JPEG is decoded. Resume needs the same shards,
seed, batch_pairs, shuffle_buffer, world size and worker count.
"""

from __future__ import annotations

import json
import logging
import random
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import braceexpand
import fsspec
import numpy as np
import torch
import webdataset as wds
from torch import Tensor
from torch.utils.data import IterableDataset, get_worker_info

from hierdata.errors import InputError
from hierdata.image_decode import jpeg_layout
from hierdata.image_files import ImageError
from hierdata.io import exists
from hierdata.outputs import read_shard_index, shard_entries, sizes_json_url
from training.images import letterbox
from training.pairs import BatchPlan, CropId, SamplePairs, pack_pairs, plan_batch, sample_pairs

LOG = logging.getLogger(__name__)


def expand_shards(spec: str) -> list[str]:
    """Shard URLs of a spec: comma-separated parts, each brace-expanded, in order; a part that
    is a shard folder (``OUTPUT/shards/train``) stands for every shard its sizes.json lists.

    ``'gs://b/train-{000000..000002}.tar,/data/extra.tar'`` gives four URLs; zero padding of a
    range is kept. Commas inside braces belong to the brace expression (``{a,b}``).
    """
    parts, depth, start = [], 0, 0
    for position, char in enumerate(spec):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(spec[start:position])
            start = position + 1
    parts.append(spec[start:])
    urls = [url for part in parts if part.strip() for url in _expand_part(part.strip())]
    if not urls:
        raise InputError(f"no shards in spec {spec!r}")
    if len(set(urls)) != len(urls):
        raise InputError(f"shard spec {spec!r} lists a shard twice")
    return urls


def _expand_part(part: str) -> list[str]:
    """One part of a shard spec: a shard folder with a sizes.json gives every shard it lists
    (hierdata.outputs.read_shard_index); anything else is brace-expanded."""
    if not part.endswith(".tar") and "{" not in part and exists(sizes_json_url(part)):
        return [entry.url for entry in read_shard_index(part)]
    return list(braceexpand.braceexpand(part))


def epoch_samples(urls: Sequence[str]) -> int:
    """Samples (source images) in one epoch over ``urls``: the sum of their counts in the
    shard index (the sizes.json of each shard's folder).

    Raises InputError when a shard is not listed there, or the index is missing or malformed.
    """
    return sum(entry.samples for entry in shard_entries(urls))


@dataclass
class PairBatch:
    """One training batch: unique crops as uint8 pixels plus the pairs over them.

    pixels: (N, 3, S, S) uint8 letterboxed crops; parent_index, child_index: (P,) int64 rows of
    pixels; positive_mask: (N, N) bool (see plan_batch); crops: (N,) crop ids; worker, epoch,
    index: the logical worker that made the batch and its position in that worker's epoch (for
    DataState); samples_completed: as in BatchPlan.
    """

    pixels: Tensor
    parent_index: Tensor
    child_index: Tensor
    positive_mask: Tensor
    crops: list[CropId]
    worker: int
    epoch: int
    index: int
    samples_completed: int

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PairBatch:
        move = {"non_blocking": non_blocking}
        return replace(
            self,
            pixels=self.pixels.to(device, **move),
            parent_index=self.parent_index.to(device, **move),
            child_index=self.child_index.to(device, **move),
            positive_mask=self.positive_mask.to(device, **move),
        )

    def pin_memory(self) -> PairBatch:
        """Called by DataLoader(pin_memory=True) so host-to-GPU copies can be asynchronous."""
        return replace(self, pixels=self.pixels.pin_memory())


def _decoded(sample: SamplePairs, entry: str, size: int, fill: tuple[int, int, int]) -> np.ndarray:
    try:
        return letterbox(sample.jpegs[entry], size, fill)
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for bad image data
        # parse_sample checked the JPEG's structure; only damaged entropy data gets here.
        raise InputError(f"sample {sample.image_id}: {entry} cannot be decoded: {err}") from err


def decode_batch(plan: BatchPlan, size: int, fill: tuple[int, int, int]) -> Tensor:
    """(N, 3, size, size) uint8: each unique crop of the plan decoded exactly once."""
    crops = [_decoded(sample, entry, size, fill) for sample, entry in plan.sources]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


@dataclass
class DataState:
    """Where one rank's batch stream stands (see "Exact resume" in the module docstring).

    epochs[w], batches[w]: the epoch logical worker w is in and how many of its batches of that
    epoch were consumed; next_worker: the logical worker whose batch comes next.
    """

    epochs: list[int]
    batches: list[int]
    next_worker: int = 0

    @classmethod
    def start(cls, num_workers: int) -> DataState:
        """The state before any batch, for a DataLoader with ``num_workers`` (0: one stream)."""
        n = max(1, num_workers)
        return cls([0] * n, [0] * n)

    def advance(self, batch: PairBatch) -> None:
        """Record that the trainer consumed ``batch``."""
        self.epochs[batch.worker] = batch.epoch
        self.batches[batch.worker] = batch.index + 1
        self.next_worker = (batch.worker + 1) % len(self.epochs)

    def to_tensor(self) -> Tensor:
        """(1 + 2W,) int64: next_worker, epochs, batches (a checkpoint-safe form)."""
        return torch.tensor([self.next_worker, *self.epochs, *self.batches], dtype=torch.int64)

    @classmethod
    def from_tensor(cls, values: Tensor) -> DataState:
        values = [int(v) for v in values.tolist()]
        n = (len(values) - 1) // 2
        return cls(values[1 : 1 + n], values[1 + n :], values[0])


def _tar_members(urls: Iterable[str]) -> Iterator[dict]:
    """Every member of the shards' tars ({"fname", "data", "__url__"}), in order.

    Raises:
        InputError: a shard that is missing, truncated or not a tar at all: the data cannot be
            trusted past that point, so this is the user's to fix (rerun the pipeline).
    """
    for url in urls:
        try:
            with fsspec.open(url, "rb") as stream:
                for member in wds.tariterators.tar_file_iterator(stream):
                    member["__url__"] = url
                    yield member
        except FileNotFoundError as err:
            raise InputError(f"shard not found: {url}") from err
        except (tarfile.TarError, EOFError, OSError) as err:
            reason = str(err.args[0] if err.args else err).split(" @ ")[0]  # no object address
            raise InputError(
                f"{url} is not a readable tar shard ({reason}): truncated or not a tar; "
                "rerun the pipeline to rewrite it"
            ) from err


class CorruptSample(ValueError):
    """A shard sample that cannot be used as it is (skipped and counted, see SkipCounter)."""


def parse_sample(sample: Mapping[str, object]) -> SamplePairs:
    """A tar sample's pairs, once its JSON parses and every crop its pairs use is a JPEG that
    ends properly (hierdata.image_decode.jpeg_layout: markers only, no pixel decode).

    Raises:
        CorruptSample: naming what is wrong.
    """
    if "json" not in sample:
        raise CorruptSample("no json entry")
    try:
        metadata = json.loads(sample["json"])
        pairs = sample_pairs(metadata, sample)
    except (ValueError, TypeError, KeyError, AttributeError, InputError) as err:
        raise CorruptSample(f"malformed sample JSON: {type(err).__name__}: {err}") from err
    used = {crop for pair in pairs.pairs for crop in pair}
    for crop in used:
        entry = pairs.entries[crop]
        data = sample.get(entry)
        if not isinstance(data, bytes):
            raise CorruptSample(f"no {entry} entry")
        try:
            jpeg_layout(data)
        except ImageError as err:
            raise CorruptSample(f"{entry}: {err}") from err
    return pairs


@dataclass
class SkipCounter:
    """Samples skipped as corrupt, by reason; past the bound the stream stops with an error.

    The bound: more than max(min_skips, max_fraction * samples seen) skipped samples.
    """

    max_fraction: float = 0.01
    min_skips: int = 10
    seen: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def keep(self) -> None:
        self.seen += 1

    def skip(self, url: str, key: str, err: CorruptSample) -> None:
        """Count one skipped sample (a WARNING for the first ones); InputError past the bound."""
        self.seen += 1
        reason = str(err).split(":", 1)[0]
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        total = sum(self.skipped.values())
        if total <= self.min_skips or total % 100 == 0:
            LOG.warning(
                "skipped corrupt sample %s in %s: %s (%d skipped so far)", key, url, err, total
            )
        if total > max(self.min_skips, self.max_fraction * self.seen):
            worst = ", ".join(
                f"{r} ({n})" for r, n in sorted(self.skipped.items(), key=lambda x: -x[1])
            )
            raise InputError(
                f"{total} of {self.seen} shard samples read are corrupt (more than "
                f"{self.max_fraction:.0%}); e.g. {key} in {url}: {err}; by reason: {worst}"
            )


def read_samples(urls: Iterable[str], skips: SkipCounter | None = None) -> Iterator[SamplePairs]:
    """The samples of the shards, in shard then tar order, expanded into pairs; corrupt ones
    (parse_sample) are skipped and counted in `skips` (a fresh SkipCounter by default)."""
    skips = skips if skips is not None else SkipCounter()
    for sample in wds.tariterators.group_by_keys(_tar_members(urls)):
        try:
            pairs = parse_sample(sample)
        except CorruptSample as err:
            skips.skip(sample.get("__url__", "?"), sample.get("__key__", "?"), err)
            continue
        skips.keep()
        yield pairs


@dataclass
class PairStream(IterableDataset):
    """Batches of pairs from shards, split by rank and DataLoader worker (see module docstring).

    Use with ``DataLoader(stream, batch_size=None, num_workers=...)`` (make_loader); the
    DataLoader's worker count must equal the state's. ``epochs`` None streams forever, so every
    rank runs the same number of steps however its shards are sized.
    """

    urls: list[str]
    batch_pairs: int
    image_size: int
    fill: tuple[int, int, int] = (124, 116, 104)
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    shuffle_buffer: int = 1000
    shuffle: bool = True
    epochs: int | None = None
    state: DataState = field(default_factory=lambda: DataState.start(0))

    def __post_init__(self) -> None:
        IterableDataset.__init__(self)
        if len(self.urls) < self.world_size:
            raise InputError(f"{len(self.urls)} shards cannot feed {self.world_size} ranks")

    def worker_shards(self, epoch: int, worker: int, num_workers: int) -> list[str]:
        """This rank's and logical worker's shards in ``epoch``: a (seed, epoch) permutation of
        all shards, the same on every rank, split by rank and then by worker."""
        order = list(self.urls)
        if self.shuffle:
            random.Random(f"shards/{self.seed}/{epoch}").shuffle(order)
        return order[self.rank :: self.world_size][worker::num_workers]

    def plans(self, epoch: int, worker: int, num_workers: int) -> Iterator[BatchPlan]:
        """The batch plans of one logical worker's epoch (decoding not yet done)."""
        samples = read_samples(self.worker_shards(epoch, worker, num_workers))
        if self.shuffle:
            rng = random.Random(f"samples/{self.seed}/{epoch}/{self.rank}/{worker}")
            buffer = self.shuffle_buffer
            samples = wds.filters.shuffle(buffer, initial=buffer, rng=rng)(samples)
        return (plan_batch(chunks) for chunks in pack_pairs(samples, self.batch_pairs))

    def __iter__(self) -> Iterator[PairBatch]:
        info = get_worker_info()
        slot, num_workers = (info.id, info.num_workers) if info else (0, 1)
        if num_workers != len(self.state.epochs):
            raise ValueError(f"state is for {len(self.state.epochs)} workers, not {num_workers}")
        # DataLoader asks worker 0 first: give it the logical worker whose batch is next.
        worker = (slot + self.state.next_worker) % num_workers
        epoch, skip = self.state.epochs[worker], self.state.batches[worker]
        if not self.worker_shards(epoch, worker, num_workers):
            return  # more workers than shards on this rank: DataLoader skips this one
        while self.epochs is None or epoch < self.epochs:
            index = -1
            for index, plan in enumerate(self.plans(epoch, worker, num_workers)):
                if index >= skip:  # consumed before a resume: planned, never decoded
                    pixels = decode_batch(plan, self.image_size, self.fill)
                    yield _batch(plan, pixels, worker, epoch, index)
            if index < 0:
                raise InputError(
                    f"shards {self.worker_shards(epoch, worker, num_workers)} hold no pairs"
                )
            epoch, skip = epoch + 1, 0


def _batch(plan: BatchPlan, pixels: Tensor, worker: int, epoch: int, index: int) -> PairBatch:
    return PairBatch(
        pixels=pixels,
        parent_index=torch.from_numpy(plan.parent_index),
        child_index=torch.from_numpy(plan.child_index),
        positive_mask=torch.from_numpy(plan.positive_mask),
        crops=plan.crops,
        worker=worker,
        epoch=epoch,
        index=index,
        samples_completed=plan.samples_completed,
    )


def make_loader(
    stream: PairStream, num_workers: int, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """A DataLoader over the stream's batches; its own generator leaves torch's global RNG alone."""
    return torch.utils.data.DataLoader(
        stream,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(stream.seed),
        prefetch_factor=4 if num_workers else None,
    )
