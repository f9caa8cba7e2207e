"""Beam adapters for the annotation stages: read and validate the CSVs, bucket images, mine.

Every decision is a `hierdata` call; these DoFns only move Arrow tables between Beam stages.
Elements are whole record batches (a CSV chunk, an image bucket), never single boxes.
"""

from collections.abc import Iterable, Mapping

import apache_beam as beam
import pyarrow as pa

from hierdata import buckets, readers, runinfo, subset
from pipelines import progress
from pipelines.config import MiningRules
from pipelines.counters import counter
from pipelines.tables import WriteTable

# Tagged outputs.
REJECTS = "rejects"
COUNTS = "counts"
LABEL_PAIR_COUNTS = "label_pair_counts"


class ReadChunk(beam.DoFn):
    """Parse and validate one byte range of a bbox CSV into ROWS and REJECTS tables.

    The chunk's first line number comes from the line counts of the chunks before it in the
    same file (side input), so rejects name exact lines without any worker reading a whole file.
    """

    def __init__(
        self,
        headers: Mapping[str, readers.Header],
        labels: frozenset[str],
        image_ids: str | None = None,
    ):
        self._headers = dict(headers)
        self._labels = labels
        self._image_ids_url = image_ids  # the --image_ids subset file, read once per worker
        self._image_ids = None

    def setup(self):
        if self._image_ids_url:
            self._image_ids = subset.read_image_ids(self._image_ids_url)

    def process(self, chunk: readers.Chunk, line_counts: Mapping[tuple[str, int], int]):
        header = self._headers[chunk.url]
        first = readers.first_line(chunk, line_counts)
        rows, rejects = readers.read_chunk(chunk, header, first, self._labels)
        if self._image_ids is not None:  # --image_ids: other images' rows are not this run's
            rows = subset.keep_images(rows, self._image_ids)
        counts = runinfo.read_counts(chunk.split, rows, rejects)
        counter("rows_read").inc(counts["lines"][chunk.split])
        progress.add("rows_read", counts["lines"][chunk.split])
        for reason, n in counts["rejects"][chunk.split].items():
            counter(f"rejects_{reason}").inc(n)
        if rejects.num_rows:
            yield beam.pvalue.TaggedOutput(REJECTS, (f"{chunk.split}-{chunk.index:05d}", rejects))
        yield beam.pvalue.TaggedOutput(COUNTS, counts)
        if rows.num_rows:
            yield rows

    def finish_bundle(self):
        progress.flush()


class ReadAnnotations(beam.PTransform):
    """Chunks of the bbox CSVs -> validated ROWS tables (main), counts; writes tables/rejects."""

    def __init__(
        self,
        chunks: list[readers.Chunk],
        headers,
        labels: frozenset[str],
        root: str,
        image_ids: str | None = None,
    ):
        super().__init__()
        self._chunks = chunks
        self._headers = headers
        self._labels = labels
        self._root = root
        self._image_ids = image_ids

    def expand(self, pipeline):
        chunks = pipeline | "Chunks" >> beam.Create(self._chunks) | "Spread" >> beam.Reshuffle()
        line_counts = chunks | "Count lines" >> beam.Map(
            lambda c: ((c.url, c.index), readers.count_lines(c))
        )
        read = chunks | "Read and validate" >> beam.ParDo(
            ReadChunk(self._headers, self._labels, self._image_ids),
            line_counts=beam.pvalue.AsDict(line_counts),
        ).with_outputs(REJECTS, COUNTS, main="rows")
        read[REJECTS] | "Write rejects" >> WriteTable(self._root, "rejects")
        return read


class MineBucket(beam.DoFn):
    """Mine one image bucket (whole images only, so every rule sees all boxes)."""

    def __init__(self, rules: MiningRules):
        self._rules = rules

    def process(self, element: tuple[int, Iterable[pa.Table]]):
        bucket, rows = element
        rules = self._rules
        mined = buckets.mine_bucket(
            bucket,
            rows,
            rules.min_box_area,
            rules.containment,
            rules.duplicate_iou,
            rules.stats_splits,
        )
        counter("boxes_kept").inc(sum(mined.counts["kept_boxes"].values()))
        counter("pairs_image_box").inc(mined.image_box.num_rows)
        counter("pairs_box_box_candidates").inc(mined.candidates.num_rows)
        progress.add("images_mined", sum(mined.counts["images"].values()))
        yield mined
        yield beam.pvalue.TaggedOutput(COUNTS, mined.counts)
        yield beam.pvalue.TaggedOutput(LABEL_PAIR_COUNTS, mined.label_pair_counts)

    def finish_bundle(self):
        progress.flush()


class MineImages(beam.PTransform):
    """ROWS tables -> buckets.MinedBucket per image bucket (main), counts, label-pair counts of
    the stats splits; writes tables/boxes and tables/candidates."""

    def __init__(self, n_buckets: int, rules: MiningRules, root: str):
        super().__init__()
        self._n_buckets = n_buckets
        self._rules = rules
        self._root = root

    def expand(self, rows):
        mined = (
            rows
            | "Key by image bucket" >> beam.FlatMap(buckets.split_by_bucket, self._n_buckets)
            | "Group images" >> beam.GroupByKey()
            | "Mine"
            >> beam.ParDo(MineBucket(self._rules)).with_outputs(
                COUNTS, LABEL_PAIR_COUNTS, main="buckets"
            )
        )
        boxes = mined.buckets | "Boxes" >> beam.Map(lambda m: (m.part, m.boxes))
        boxes | "Write boxes" >> WriteTable(self._root, "boxes")
        candidates = mined.buckets | "Candidates" >> beam.FlatMap(
            lambda m: [(m.part, m.candidates)] if m.candidates.num_rows else []
        )
        candidates | "Write candidates" >> WriteTable(self._root, "candidates")
        return mined
