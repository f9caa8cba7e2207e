"""Beam adapters for the annotation stages: read chunks, bucket images, mine, count, filter.

Every decision is a `hierdata` call; these DoFns only move Arrow tables between Beam stages.
Elements are whole record batches (a CSV chunk, an image bucket), never single boxes.
"""

import zlib
from collections.abc import Iterable, Mapping

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from hierdata import mining, readers, stats
from schemas import PAIRS, ROWS

NAMESPACE = "hierdata"

# Tagged outputs.
REJECTS = "rejects"
COUNTS = "counts"
BOXES = "boxes"
IMAGE_BOX = "image_box"
CANDIDATES = "candidates"
PAIR_COUNTS = "pair_counts"
LABEL_COUNTS = "label_counts"


def _counter(name: str):
    return Metrics.counter(NAMESPACE, name)


class ReadChunk(beam.DoFn):
    """Parse and validate one byte range of a bbox CSV into ROWS and REJECTS tables.

    The chunk's first line number is the sum of the line counts of the chunks before it in the
    same file (side input), so rejects name exact lines without any worker reading a whole file.
    """

    def __init__(self, headers: Mapping[str, readers.Header], labels: frozenset[str]):
        self._headers = dict(headers)
        self._labels = labels

    def process(self, chunk: readers.Chunk, line_counts: Mapping[tuple[str, int], int]):
        before = sum(line_counts[(chunk.url, i)] for i in range(chunk.index))
        rows, rejects = readers.read_chunk(chunk, self._headers[chunk.url], 2 + before,
                                           self._labels)
        lines = rows.num_rows + rejects.num_rows
        _counter("rows_read").inc(lines)
        by_reason: dict[str, int] = {}
        if rejects.num_rows:
            reasons, counts = np.unique(rejects.column("reason").to_numpy(zero_copy_only=False),
                                        return_counts=True)
            by_reason = {str(r): int(n) for r, n in zip(reasons, counts, strict=True)}
            for reason, n in by_reason.items():
                _counter(f"rejects_{reason}").inc(n)
            yield beam.pvalue.TaggedOutput(REJECTS, rejects)
        yield beam.pvalue.TaggedOutput(COUNTS, {"lines": {chunk.split: lines},
                                                "rows": {chunk.split: rows.num_rows},
                                                "rejects": {chunk.split: by_reason}})
        if rows.num_rows:
            yield rows


def image_buckets(image_ids: pa.Array, n_buckets: int) -> np.ndarray:
    """Stable bucket of every row's image: crc32(image_id) % n_buckets, (N,) int64.

    crc32 runs once per distinct image (dictionary encoding), not per box; Python's hash() is
    salted per process, so it would scatter one image across workers.
    """
    encoded = pa.chunked_array([image_ids]).combine_chunks().dictionary_encode()
    per_image = np.fromiter((zlib.crc32(s.encode()) % n_buckets
                             for s in encoded.dictionary.to_pylist()),
                            dtype=np.int64, count=len(encoded.dictionary))
    return per_image[encoded.indices.to_numpy(zero_copy_only=False)]


class KeyByImageBucket(beam.DoFn):
    """Split a ROWS table into one (bucket, table) element per image bucket it touches."""

    def __init__(self, n_buckets: int):
        self._n_buckets = n_buckets

    def process(self, rows: pa.Table):
        buckets = image_buckets(rows.column("image_id"), self._n_buckets)
        order = np.argsort(buckets, kind="stable")
        keys, starts = np.unique(buckets[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        for key, start, end in zip(keys, starts, ends, strict=True):
            yield int(key), rows.take(order[start:end])


class MineBucket(beam.DoFn):
    """Index, mine and count one image bucket (whole images only, so every rule sees all boxes)."""

    def __init__(self, min_box_area: float, containment: float, duplicate_iou: float,
                 stats_splits: tuple[str, ...]):
        self._min_box_area = min_box_area
        self._containment = containment
        self._duplicate_iou = duplicate_iou
        self._stats_splits = pa.array(stats_splits, pa.string())

    def process(self, element: tuple[int, Iterable[pa.Table]]):
        _, tables = element
        rows = pa.concat_tables(list(tables)).cast(ROWS)
        boxes = mining.index_boxes(rows, self._min_box_area)
        image_box, candidates = mining.mine_pairs(boxes, self._containment, self._duplicate_iou)
        _counter("boxes_kept").inc(int(pa.compute.sum(boxes.column("kept")).as_py() or 0))
        _counter("pairs_image_box").inc(image_box.num_rows)
        _counter("pairs_box_box_candidates").inc(candidates.num_rows)
        yield beam.pvalue.TaggedOutput(BOXES, boxes)
        yield beam.pvalue.TaggedOutput(IMAGE_BOX, image_box)
        if candidates.num_rows:
            yield beam.pvalue.TaggedOutput(CANDIDATES, candidates)
        yield beam.pvalue.TaggedOutput(COUNTS, _bucket_counts(boxes, image_box, candidates))

        in_stats = pa.compute.is_in(boxes.column("split"), value_set=self._stats_splits)
        for row in stats.label_counts(boxes.filter(in_stats)).to_pylist():
            yield beam.pvalue.TaggedOutput(LABEL_COUNTS, (row["label"], row["kept_boxes"]))
        in_stats = pa.compute.is_in(candidates.column("split"), value_set=self._stats_splits)
        # One element per distinct label pair per bucket: Person/Clothing arrive pre-summed,
        # so even the hottest label pair is a few hundred elements, combined before the shuffle.
        for row in stats.pair_counts(candidates.filter(in_stats)).to_pylist():
            yield beam.pvalue.TaggedOutput(
                PAIR_COUNTS, ((row["parent_label"], row["child_label"]),
                              (row["frequency"], row["parents_with_child"])))


def _per_split(table: pa.Table, column: str | None = None) -> dict[str, int]:
    if table.num_rows == 0:
        return {}
    if column is None:
        grouped = table.group_by("split").aggregate([([], "count_all")])
        return dict(zip(grouped["split"].to_pylist(), grouped["count_all"].to_pylist(),
                        strict=True))
    grouped = table.group_by("split").aggregate([(column, "count_distinct")])
    return dict(zip(grouped["split"].to_pylist(), grouped[f"{column}_count_distinct"].to_pylist(),
                    strict=True))


def _bucket_counts(boxes: pa.Table, image_box: pa.Table, candidates: pa.Table) -> dict:
    kept = boxes.filter(boxes.column("kept"))
    return {"boxes": _per_split(boxes), "kept_boxes": _per_split(kept),
            "images": _per_split(boxes, "image_id"), "image_box_pairs": _per_split(image_box),
            "candidate_pairs": _per_split(candidates)}


def sum_count_tuples(values: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    """Elementwise sum of count tuples; associative, so Beam may combine partial sums."""
    return tuple(int(sum(column)) for column in zip(*values, strict=True))


class FilterAccepted(beam.DoFn):
    """Keep the box_box candidates whose label pair is accepted (side input, a few 10k keys)."""

    def process(self, candidates: pa.Table, accepted: frozenset[tuple[str, str]]):
        pairs = stats.filter_accepted(candidates, accepted).cast(PAIRS)
        _counter("pairs_box_box_accepted").inc(pairs.num_rows)
        yield beam.pvalue.TaggedOutput(COUNTS, {"accepted_pairs": _per_split(pairs)})
        if pairs.num_rows:
            yield pairs
