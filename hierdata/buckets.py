"""Image buckets, the unit of work of the pipeline: which bucket an image falls in, and what a
run derives from one bucket of whole images, first (mining) and last (pairs, trees, cross-image
pairs, sample plans).

A bucket holds every box of its images, so every per-image rule sees all of an image's boxes;
its tables are whole record batches, never single boxes.
"""

import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from hierdata import cross_image, mining, runinfo, samples, stats, trees
from hierdata.stats import LabelPairCounts
from schemas import PAIRS, ROWS

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def bucket_count(csv_bytes: int, bucket_bytes: int) -> int:
    """How many buckets a run uses: ceil(csv_bytes / bucket_bytes), at least 1.

    Args:
        csv_bytes: total size of the bbox CSVs read.
        bucket_bytes: about how much CSV one bucket holds (--bucket_mib).
    """
    return max(1, math.ceil(csv_bytes / bucket_bytes))


def image_buckets(image_ids: pa.Array | pa.ChunkedArray, n_buckets: int) -> np.ndarray:
    """Stable bucket of every row's image: FNV-1a-64(image_id) % n_buckets, (N,) int64.

    Vectorised over the distinct ids (one numpy pass per character position, at most 128), so
    it costs no per-box or per-image Python; Python's hash() is salted per process and would
    scatter one image's boxes across buckets.
    """
    encoded = pa.chunked_array(image_ids).combine_chunks().dictionary_encode()
    ids = encoded.dictionary.to_numpy(zero_copy_only=False).astype(bytes)
    width = ids.dtype.itemsize
    chars = np.frombuffer(ids.tobytes(), dtype=np.uint8).reshape(len(ids), width)
    lengths = np.char.str_len(ids)
    digest = np.full(len(ids), _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):  # FNV multiplies modulo 2**64 by design
        for position in range(width):
            live = position < lengths
            mixed = (digest ^ chars[:, position].astype(np.uint64)) * _FNV_PRIME
            digest = np.where(live, mixed, digest)
    per_image = (digest % np.uint64(n_buckets)).astype(np.int64)
    return per_image[encoded.indices.to_numpy(zero_copy_only=False)]


def split_by_bucket(rows: pa.Table, n_buckets: int) -> Iterator[tuple[int, pa.Table]]:
    """(bucket, rows of that bucket) for every bucket `rows` touches, in bucket order.

    Rows keep their order inside a bucket (a stable sort), so a bucket's table is the same
    whatever else shared the batch.
    """
    buckets = image_buckets(rows.column("image_id"), n_buckets)
    order = np.argsort(buckets, kind="stable")
    keys, starts = np.unique(buckets[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    for key, start, end in zip(keys, starts, ends, strict=True):
        yield int(key), rows.take(order[start:end])


@dataclass(frozen=True)
class MinedBucket:
    """One bucket after mining (DESIGN "Image ⊃ box", "Box ⊃ box")."""

    part: str  # the bucket's table part name, "00042": stable, so a retry rewrites one file
    boxes: pa.Table  # schemas.BOXES
    image_box: pa.Table  # schemas.PAIRS of kind image_box
    candidates: pa.Table  # schemas.PAIRS of kind box_box
    label_pair_counts: LabelPairCounts  # of the stats splits only
    counts: dict  # runinfo counts: boxes, kept_boxes, images, image_box_pairs, candidate_pairs


def mine_bucket(
    bucket: int,
    rows: Iterable[pa.Table],
    min_box_area: float,
    containment: float,
    duplicate_iou: float,
    stats_splits: Collection[str],
) -> MinedBucket:
    """Number, filter and mine the boxes of one bucket and count its label pairs.

    Args:
        bucket: the bucket's number (split_by_bucket).
        rows: schemas.ROWS tables that together hold every row of the bucket's images.
        min_box_area, containment, duplicate_iou: the mining rules (mining.index_boxes,
            mining.mine_pairs).
        stats_splits: the splits whose boxes and candidates decide the statistics.
    """
    boxes = mining.index_boxes(pa.concat_tables(list(rows)).cast(ROWS), min_box_area)
    image_box, candidates = mining.mine_pairs(boxes, containment, duplicate_iou)
    kept = boxes.filter(boxes.column("kept"))
    counts = {
        "boxes": runinfo.count_per_split(boxes),
        "kept_boxes": runinfo.count_per_split(kept),
        "images": runinfo.count_per_split(boxes, "image_id"),
        "image_box_pairs": runinfo.count_per_split(image_box),
        "candidate_pairs": runinfo.count_per_split(candidates),
    }
    label_pair_counts = LabelPairCounts.of_images(boxes, candidates, stats_splits)
    return MinedBucket(f"{bucket:05d}", boxes, image_box, candidates, label_pair_counts, counts)


@dataclass(frozen=True)
class FinishedBucket:
    """One bucket once the statistics are known: what its tables and shards receive."""

    part: str
    pairs: pa.Table  # schemas.PAIRS: image ⊃ box and accepted box ⊃ box (training pairs)
    image_trees: pa.Table  # schemas.IMAGE_TREES
    cross_pairs: pa.Table  # schemas.CROSS_PAIRS whose scenes are this bucket's images
    plans: list[samples.SamplePlan]  # one per image with kept boxes; empty without shards
    # ((split, source image), (source box, target image, xNNN key)): the crops this bucket's
    # images ask of other images, keyed by the image that cuts them; empty without shards.
    crop_requests: list[tuple[tuple[str, str], tuple[int, str, str]]]
    counts: dict  # runinfo counts: accepted_pairs, cross_image_pairs, samples_planned


def finish_bucket(
    mined: MinedBucket,
    accepted: Collection[tuple[str, str]],
    reservoirs: Mapping[tuple[str, str], cross_image.Reservoir],
    cross_image_samples: int,
    seed: int,
    plan_samples: bool,
    names: Mapping[str, str] | None = None,
) -> FinishedBucket:
    """Accepted pairs, per-image trees, cross-image pairs and sample plans of one bucket.

    Args:
        mined: the bucket, as mine_bucket left it.
        accepted: the accepted (parent_label, child_label) pairs of the whole run.
        reservoirs: the run's per-(split, label) reservoirs (cross_image.reservoirs_from_table).
        cross_image_samples, seed: as for cross_image.sample_cross_image.
        plan_samples: False when no shards are written (--skip_images): no plans, no requests.
        names: the labels' display names, written beside their ids in each sample's JSON.
    """
    box_box = stats.filter_accepted(mined.candidates, accepted).cast(PAIRS)
    pairs = pa.concat_tables([mined.image_box.cast(PAIRS), box_box])
    image_trees = trees.image_trees(mined.boxes, box_box)
    cross = cross_image.sample_cross_image(mined.boxes, reservoirs, cross_image_samples, seed)
    plans, requests = [], []
    if plan_samples:
        plans = list(samples.plan_samples(mined.boxes, pairs, image_trees, cross, names))
        requests = list(samples.crop_requests_by_source(cross))
    planned: dict[str, int] = {}
    for plan in plans:
        planned[plan.split] = planned.get(plan.split, 0) + 1
    counts = {
        "accepted_pairs": runinfo.count_per_split(box_box),
        "cross_image_pairs": runinfo.count_per_split(cross),
        "samples_planned": planned,
    }
    return FinishedBucket(mined.part, pairs, image_trees, cross, plans, requests, counts)
