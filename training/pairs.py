"""A shard sample's entailment pairs and the packing of pairs into batches over unique crops.

Crop identity. A crop is ``(image_id, key)``. A cross-image crop ``xNNN`` is the source image's
box ``b{source_box_id}``, so it is identified as ``(source_image_id, bNNN)``: the same box met
as its own image's box and as another image's cross-image crop is encoded once and is never a
negative of itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hierdata.errors import InputError
from schemas.sample import ROOT_KEY, box_key

CropId = tuple[str, str]  # (image_id, crop key), see "Crop identity" above


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
