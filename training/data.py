"""The shard loader for training: shard lists, batches of pairs over unique crops, augmentation.

Streams WebDataset shards (local paths or fsspec URLs) and yields PairBatch objects for the loop.

Pipeline, per rank and DataLoader worker, per epoch: shard list shuffled by (seed, epoch), split
by rank then by worker -> tars read with webdataset's tariterators through fsspec streams ->
samples parsed (schemas/sample.py) -> a shuffle buffer of samples -> samples expanded into their
pairs and packed, in order, into batches of ``batch_pairs`` pairs (a sample may straddle two
batches; the last batch of an epoch may be short) -> every unique crop of a batch decoded once
with PIL and letterboxed to a fixed square -> uint8 tensors. Augmentation (``Augment``) runs
after that on the training device, on whole batches, with kornia.

Crop identity. A crop is ``(image_id, key)``. A cross-image crop ``xNNN`` is the source image's
box ``b{source_box_id}``, so it is identified as ``(source_image_id, bNNN)``: the same box met
as its own image's box and as another image's cross-image crop is encoded once and is never a
negative of itself.

Exact resume. Each stream is a pure function of (seed, epoch, rank, worker): nothing depends on
timing or process ids. DataLoader hands out batches of an iterable dataset round-robin over its
workers (skipping workers that have none), so ``DataState`` records, per worker, the epoch in
progress and how many of its batches the trainer consumed, plus the worker whose batch is next.
A resumed stream rotates the workers so that one comes first and lets each worker re-read its
epoch, skipping consumed batches before any JPEG is decoded. Resume needs the same shards,
seed, batch_pairs, shuffle_buffer, world size and worker count.
"""

from __future__ import annotations

import io
import json
import posixpath
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import braceexpand
import fsspec
import kornia.augmentation as K
import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import IterableDataset, get_worker_info

from hierdata.errors import InputError
from hierdata.io import read_bytes
from schemas.sample import ROOT_KEY, box_key

CropId = tuple[str, str]  # (image_id, crop key), see "Crop identity" above
SIZES_JSON = "sizes.json"


def expand_shards(spec: str) -> list[str]:
    """Shard URLs of a spec: comma-separated parts, each brace-expanded, in order.

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
    urls = [url for part in parts if part.strip() for url in braceexpand.braceexpand(part.strip())]
    if not urls:
        raise InputError(f"no shards in spec {spec!r}")
    if len(set(urls)) != len(urls):
        raise InputError(f"shard spec {spec!r} lists a shard twice")
    return urls


def shard_sizes(urls: Sequence[str]) -> dict[str, int]:
    """Samples per shard URL, from the ``sizes.json`` in each shard's folder."""
    by_folder: dict[str, dict[str, int]] = {}
    sizes = {}
    for url in urls:
        folder, name = posixpath.split(url)
        if folder not in by_folder:
            sizes_url = posixpath.join(folder, SIZES_JSON)
            try:
                by_folder[folder] = json.loads(read_bytes(sizes_url))
            except ValueError as err:
                raise InputError(f"{sizes_url} is not valid JSON: {err}") from err
        if name not in by_folder[folder]:
            raise InputError(f"shard {url} is not listed in {posixpath.join(folder, SIZES_JSON)}")
        sizes[url] = int(by_folder[folder][name])
    return sizes


def epoch_samples(urls: Sequence[str]) -> int:
    """Samples (source images) in one epoch over ``urls``: the sum of their sizes.json counts."""
    return sum(shard_sizes(urls).values())


@dataclass(frozen=True)
class SamplePairs:
    """One shard sample expanded into its pairs, with canonical crop ids.

    pairs: (parent, child) crop ids in metadata order; entries: crop id -> tar entry name
    ("b000.jpg"); labels: crop id -> label of a box or cross-image crop (the whole image has
    none); image_labels: the labels of the image's kept boxes; jpegs: the raw sample entries
    (None when only planning from metadata, as the benchmark does).
    """

    image_id: str
    pairs: list[tuple[CropId, CropId]]
    entries: dict[CropId, str]
    labels: dict[CropId, str]
    image_labels: frozenset[str]
    jpegs: Mapping[str, bytes] | None = None


def sample_pairs(metadata: Mapping, jpegs: Mapping[str, bytes] | None = None) -> SamplePairs:
    """Expand one sample's metadata (schemas.sample.SAMPLE_METADATA) into its pairs."""
    image_id = metadata["image_id"]
    by_key = {ROOT_KEY: (image_id, ROOT_KEY)}
    labels = {}
    for box in metadata["boxes"]:
        by_key[box["key"]] = crop = (image_id, box["key"])
        labels[crop] = box["label"]
    for cross in metadata["cross"]:
        by_key[cross["key"]] = crop = (cross["source_image_id"], box_key(cross["source_box_id"]))
        labels[crop] = cross["label"]
    try:
        pairs = [(by_key[pair["parent"]], by_key[pair["child"]]) for pair in metadata["pairs"]]
    except KeyError as err:
        raise InputError(f"sample {image_id}: a pair names crop {err} it does not carry") from err
    entries = {crop: f"{key}.jpg" for key, crop in by_key.items()}
    return SamplePairs(image_id, pairs, entries, labels, frozenset(metadata["labels"]), jpegs)


Chunk = tuple[SamplePairs, int, int]  # a sample and the [start, stop) range of its pairs


def pack_pairs(samples: Iterable[SamplePairs], batch_pairs: int) -> Iterator[list[Chunk]]:
    """Pack the samples' pairs, in order, into batches of exactly ``batch_pairs`` (the last: fewer).

    A sample's pairs stay together unless the batch fills up, so a batch holds few images and
    shares their crops; a sample that does not fit continues in the next batch.
    """
    if batch_pairs < 1:
        raise ValueError(f"batch_pairs must be >= 1, got {batch_pairs}")
    batch: list[Chunk] = []
    room = batch_pairs
    for sample in samples:
        start = 0
        while start < len(sample.pairs):
            stop = min(len(sample.pairs), start + room)
            batch.append((sample, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield batch
                batch, room = [], batch_pairs
    if batch:
        yield batch


@dataclass(frozen=True)
class BatchPlan:
    """The crops and pairs of one batch before decoding.

    crops: (N,) unique crop ids, in order of first appearance; sources: for each crop, the
    sample that carries it and its entry name; parent_index, child_index: (P,) int64 rows into
    crops; positive_mask: (N, N) bool, [i, j] True iff crop i entails crop j; samples_completed:
    samples whose last pair is in this batch.
    """

    crops: list[CropId]
    sources: list[tuple[SamplePairs, str]]
    parent_index: np.ndarray
    child_index: np.ndarray
    positive_mask: np.ndarray
    samples_completed: int


def plan_batch(chunks: Sequence[Chunk]) -> BatchPlan:
    """Unique crops, pair indices and the positive mask of one batch.

    positive_mask[i, j] is True when (i, j) is one of the batch's pairs, or when crop i is a
    whole image ("img") and crop j's label is among that image's labels (the cross-image rule:
    boxes of other images included); never on the diagonal.
    """
    rows: dict[CropId, int] = {}
    sources, crop_labels, parents, children = [], [], [], []
    image_labels: dict[int, frozenset[str]] = {}
    for sample, start, stop in chunks:
        for pair in sample.pairs[start:stop]:
            for crop in pair:
                if crop not in rows:
                    rows[crop] = len(rows)
                    sources.append((sample, sample.entries[crop]))
                    crop_labels.append(sample.labels.get(crop))
                    if crop[1] == ROOT_KEY:
                        image_labels[rows[crop]] = sample.image_labels
            parents.append(rows[pair[0]])
            children.append(rows[pair[1]])
    n = len(rows)
    vocabulary = {label: i for i, label in enumerate(sorted({x for x in crop_labels if x}))}
    label_ids = np.array([vocabulary.get(label, -1) for label in crop_labels], dtype=np.int64)
    mask = np.zeros((n, n), dtype=bool)
    if image_labels:
        image_rows = np.fromiter(image_labels, dtype=np.int64)
        members = np.zeros((len(image_rows), len(vocabulary) + 1), dtype=bool)  # last: no label
        for i, labels in enumerate(image_labels.values()):
            members[i, [vocabulary[x] for x in labels if x in vocabulary]] = True
        mask[image_rows] = members[:, label_ids]  # label -1 reads the always-False last column
    parent_index, child_index = np.array(parents, np.int64), np.array(children, np.int64)
    mask[parent_index, child_index] = True
    np.fill_diagonal(mask, False)
    completed = sum(stop == len(sample.pairs) for sample, _, stop in chunks)
    return BatchPlan(list(rows), sources, parent_index, child_index, mask, completed)


def letterbox(jpeg: bytes, size: int, fill: tuple[int, int, int]) -> np.ndarray:
    """Decode a JPEG and fit it, aspect ratio kept, in a ``size`` x ``size`` square.

    The longer side is scaled to ``size`` (small crops are upscaled), the image centred and the
    borders filled with ``fill`` (the encoder's mean colour, so padding normalises to zero).
    Letterboxing, unlike a centre crop, keeps every part of a box in view.

    Returns:
        (size, size, 3) uint8 RGB.
    """
    with Image.open(io.BytesIO(jpeg)) as image:
        longest = max(image.size)
        # JPEG DCT scaling decodes at 1/2, 1/4 or 1/8 when the result stays >= the target size.
        image.draft("RGB", tuple(max(1, -(-size * side // longest)) for side in image.size))
        image = image.convert("RGB")
        scale = size / max(image.size)
        width, height = (max(1, min(size, round(side * scale))) for side in image.size)
        canvas = Image.new("RGB", (size, size), fill)
        resized = image.resize((width, height), Image.Resampling.BILINEAR)
        canvas.paste(resized, ((size - width) // 2, (size - height) // 2))
        return np.asarray(canvas)


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


def decode_batch(plan: BatchPlan, size: int, fill: tuple[int, int, int]) -> Tensor:
    """(N, 3, size, size) uint8: each unique crop of the plan decoded exactly once."""
    crops = [letterbox(sample.jpegs[entry], size, fill) for sample, entry in plan.sources]
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


def _open_streams(urls: Iterable[str]) -> Iterator[dict]:
    """{"url", "stream"} per shard for webdataset's tar_file_expander, each closed after use."""
    for url in urls:
        with fsspec.open(url, "rb") as stream:
            yield {"url": url, "stream": stream}


def read_samples(urls: Iterable[str]) -> Iterator[SamplePairs]:
    """The samples of the shards, in shard then tar order, expanded into pairs."""
    files = wds.tariterators.tar_file_expander(_open_streams(urls))
    for sample in wds.tariterators.group_by_keys(files):
        if "json" not in sample:
            raise InputError(f"{sample['__url__']}: sample {sample['__key__']} has no json entry")
        yield sample_pairs(json.loads(sample["json"]), sample)


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


class Augment(nn.Module):
    """Batched augmentation and normalisation of uint8 crops, with kornia, on their device.

    Training mode (``augment=True``): horizontal and vertical flips (p 0.5 each), rotation by a
    uniform angle in [-15, 15] degrees, colour jitter brightness/contrast/saturation 0.2 and hue
    0.1, Gaussian blur with a 5x5 kernel and sigma in [0.1, 2] (p 0.5); each crop draws its own
    parameters from torch's global RNG. Resizing to the encoder's size comes first (a no-op when
    the loader already letterboxed to it), so the random ops run on the smallest images. Eval
    mode (or ``augment=False``) only resizes and normalises.

    Args:
        image_size: the encoder's input side S.
        mean, std: the encoder's per-channel normalisation, for pixels in [0, 1].
        augment: apply the random ops in training mode.
    """

    def __init__(
        self, image_size: int, mean: Sequence[float], std: Sequence[float], augment: bool = True
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.resize = K.Resize((image_size, image_size), antialias=True)
        self.random = (
            nn.Sequential(
                K.RandomHorizontalFlip(p=0.5),
                K.RandomVerticalFlip(p=0.5),
                K.RandomRotation(15.0, p=1.0),
                K.ColorJitter(0.2, 0.2, 0.2, 0.1, p=1.0),
                K.RandomGaussianBlur((5, 5), (0.1, 2.0), p=0.5),
            )
            if augment
            else None
        )
        self.normalize = K.Normalize(torch.tensor(mean), torch.tensor(std))

    def forward(self, pixels: Tensor) -> Tensor:
        """(N, 3, H, W) uint8 -> (N, 3, S, S) float32, normalised."""
        images = pixels.float() / 255.0
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = self.resize(images)
        if self.random is not None and self.training:
            # Rotation and blur can overshoot [0, 1] slightly; jitter expects that range.
            images = self.random(images).clamp(0.0, 1.0)
        return self.normalize(images)


def mean_colour(mean: Sequence[float]) -> tuple[int, int, int]:
    """The encoder's mean as 0-255 RGB: the letterbox fill that normalises to zero."""
    r, g, b = (int(round(255 * m)) for m in mean)
    return r, g, b
