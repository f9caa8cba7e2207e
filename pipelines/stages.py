"""Beam adapters for the annotation stages: read chunks, bucket images, mine, count, filter.

Every decision is a `hierdata` call; these DoFns only move Arrow tables between Beam stages.
Elements are whole record batches (a CSV chunk, an image bucket), never single boxes.
"""

from collections.abc import Iterable, Mapping

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from hierdata import io, mining, readers, runinfo, stats
from schemas import ROWS, TABLE_SCHEMAS, OutputLayout

NAMESPACE = "hierdata"

# Tagged outputs.
REJECTS = "rejects"
COUNTS = "counts"
PARENT_STATS = "parent_stats"


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
        rows, rejects = readers.read_chunk(
            chunk, self._headers[chunk.url], 2 + before, self._labels
        )
        lines = rows.num_rows + rejects.num_rows
        _counter("rows_read").inc(lines)
        by_reason: dict[str, int] = {}
        if rejects.num_rows:
            reasons, counts = np.unique(
                rejects.column("reason").to_numpy(zero_copy_only=False), return_counts=True
            )
            by_reason = {str(r): int(n) for r, n in zip(reasons, counts, strict=True)}
            for reason, n in by_reason.items():
                _counter(f"rejects_{reason}").inc(n)
            yield beam.pvalue.TaggedOutput(REJECTS, (f"{chunk.split}-{chunk.index:05d}", rejects))
        yield beam.pvalue.TaggedOutput(
            COUNTS,
            {
                "lines": {chunk.split: lines},
                "rows": {chunk.split: rows.num_rows},
                "rejects": {chunk.split: by_reason},
            },
        )
        if rows.num_rows:
            yield rows


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


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

    def __init__(
        self,
        min_box_area: float,
        containment: float,
        duplicate_iou: float,
        stats_splits: tuple[str, ...],
    ):
        self._min_box_area = min_box_area
        self._containment = containment
        self._duplicate_iou = duplicate_iou
        self._stats_splits = pa.array(stats_splits, pa.string())

    def process(self, element: tuple[int, Iterable[pa.Table]]):
        bucket, tables = element
        part = f"{bucket:05d}"
        rows = pa.concat_tables(list(tables)).cast(ROWS)
        boxes = mining.index_boxes(rows, self._min_box_area)
        image_box, candidates = mining.mine_pairs(boxes, self._containment, self._duplicate_iou)
        _counter("boxes_kept").inc(int(pa.compute.sum(boxes.column("kept")).as_py() or 0))
        _counter("pairs_image_box").inc(image_box.num_rows)
        _counter("pairs_box_box_candidates").inc(candidates.num_rows)
        yield part, {"boxes": boxes, "image_box": image_box, "candidates": candidates}
        yield beam.pvalue.TaggedOutput(COUNTS, _bucket_counts(boxes, image_box, candidates))

        in_stats = pa.compute.is_in(boxes.column("split"), value_set=self._stats_splits)
        kept = stats.label_counts(boxes.filter(in_stats))
        in_stats = pa.compute.is_in(candidates.column("split"), value_set=self._stats_splits)
        pairs = stats.pair_counts(candidates.filter(in_stats))
        # One element per parent label per bucket, its child counts pre-summed: even Person or
        # Clothing is a few hundred small elements in all, combined again before the shuffle.
        yield from (
            beam.pvalue.TaggedOutput(PARENT_STATS, item) for item in parent_label_stats(kept, pairs)
        )


def parent_label_stats(label_counts: pa.Table, pair_counts: pa.Table):
    """(parent label, (kept boxes, {child label: (frequency, parents_with_child)})) per label."""
    children: dict[str, dict[str, tuple[int, int]]] = {}
    columns = (
        pair_counts.column(name).to_pylist()
        for name in ("parent_label", "child_label", "frequency", "parents_with_child")
    )
    for parent, child, frequency, with_child in zip(*columns, strict=True):
        children.setdefault(parent, {})[child] = (frequency, with_child)
    for label, kept in zip(
        label_counts.column("label").to_pylist(),
        label_counts.column("kept_boxes").to_pylist(),
        strict=True,
    ):
        yield label, (kept, children.get(label, {}))


class SumParentStats(beam.CombineFn):
    """Sums (kept boxes, {child: (frequency, parents_with_child)}) of one parent label."""

    def create_accumulator(self):
        return 0, {}

    def add_input(self, accumulator, value):
        kept, children = accumulator
        value_kept, value_children = value
        for child, (frequency, with_child) in value_children.items():
            old_frequency, old_with_child = children.get(child, (0, 0))
            children[child] = (old_frequency + frequency, old_with_child + with_child)
        return kept + value_kept, children

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for accumulator in accumulators:
            merged = self.add_input(merged, accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator


def _bucket_counts(boxes: pa.Table, image_box: pa.Table, candidates: pa.Table) -> dict:
    kept = boxes.filter(boxes.column("kept"))
    return {
        "boxes": runinfo.count_per_split(boxes),
        "kept_boxes": runinfo.count_per_split(kept),
        "images": runinfo.count_per_split(boxes, "image_id"),
        "image_box_pairs": runinfo.count_per_split(image_box),
        "candidate_pairs": runinfo.count_per_split(candidates),
    }


class WriteTable(beam.DoFn):
    """Write each (part, table) element to OUTPUT/tables/{table}/part-{part}.parquet at once.

    Part names come from stable ids (CSV chunk, image bucket), so a retried bundle rewrites the
    same file with the same rows, and no temp-and-rename finalize stage is needed.
    """

    def __init__(self, root: str, table: str):
        self._layout = OutputLayout(root)
        self._table = table

    def process(self, element: tuple[str, pa.Table]):
        part, table = element
        buffer = pa.BufferOutputStream()
        pq.write_table(table.cast(TABLE_SCHEMAS[self._table]), buffer, compression="zstd")
        io.write_bytes(self._layout.table_part(self._table, part), buffer.getvalue().to_pybytes())
        _counter(f"files_{self._table}").inc()
