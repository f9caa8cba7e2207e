"""Beam adapters for the stages after the statistics: cross-image reservoirs, then each bucket's
accepted pairs, per-image trees, cross-image pairs and sample plans (hierdata.buckets).
"""

from collections.abc import Mapping

import apache_beam as beam
import pyarrow as pa

from hierdata import buckets, cross_image
from pipelines import progress
from pipelines.config import CrossImageSampling
from pipelines.counters import counter
from pipelines.tables import WriteTable

# Tagged outputs.
PAIRS, IMAGE_TREES, CROSS_PAIRS = "pairs", "image_trees", "cross_pairs"
PLANS, COUNTS = "plans", "counts"


class MergeReservoirs(beam.CombineFn):
    """Bottom-k merge of one (split, label)'s reservoirs: the same for any bundling.

    Inputs are collected and merged a batch at a time (one sort for many reservoirs), since a
    merge per input made this the pipeline's slowest step.
    """

    _BATCH = 64

    def __init__(self, pool: int):
        self._pool = pool

    def create_accumulator(self):
        return []

    def add_input(self, accumulator, reservoir):
        accumulator.append(reservoir)
        return self._merge(accumulator) if len(accumulator) >= self._BATCH else accumulator

    def merge_accumulators(self, accumulators):
        return self._merge([r for accumulator in accumulators for r in accumulator])

    def compact(self, accumulator):
        return self._merge(accumulator)

    def extract_output(self, accumulator):
        merged = self._merge(accumulator)
        return merged[0] if merged else None

    def _merge(self, reservoirs):
        if len(reservoirs) <= 1:
            return list(reservoirs)
        return [cross_image.merge_reservoirs(reservoirs, self._pool)]


class CrossImageReservoirs(beam.PTransform):
    """MinedBucket elements -> one reservoir table (cross_image.RESERVOIRS), a singleton.

    Bottom-k reservoirs merge the same way whatever the bundling: ~40 MB per split at most.
    """

    def __init__(self, sampling: CrossImageSampling):
        super().__init__()
        self._pool = sampling.cross_image_pool
        self._seed = sampling.seed

    def expand(self, mined):
        return (
            mined
            | "Bucket reservoirs"
            >> beam.FlatMap(
                lambda m, pool, seed: [
                    ((r.split, r.label), r)
                    for r in cross_image.bucket_reservoirs(m.boxes, pool, seed)
                ],
                self._pool,
                self._seed,
            )
            | "Merge reservoirs" >> beam.CombinePerKey(MergeReservoirs(self._pool))
            | "Reservoirs" >> beam.Values()
            | "Collect reservoirs" >> beam.combiners.ToList()
            | "Reservoir table" >> beam.Map(cross_image.reservoirs_to_table)
        )


class FinishBucket(beam.DoFn):
    """Unpack buckets.finish_bucket's result into tagged outputs."""

    def __init__(self, sampling: CrossImageSampling, plan_samples: bool, names: Mapping[str, str]):
        self._sampling = sampling
        self._plan_samples = plan_samples
        self._names = dict(names)
        self._reservoir_table = None
        self._reservoirs = None

    def _lookup(self, table: pa.Table):
        if table is not self._reservoir_table:  # convert the side input once per worker
            self._reservoir_table = table
            self._reservoirs = cross_image.reservoirs_from_table(table)
        return self._reservoirs

    def process(self, mined: buckets.MinedBucket, accepted, reservoir_table):
        sampling = self._sampling
        finished = buckets.finish_bucket(
            mined,
            accepted,
            self._lookup(reservoir_table),
            sampling.cross_image_samples,
            sampling.seed,
            self._plan_samples,
            self._names,
        )
        counter("pairs_box_box_accepted").inc(sum(finished.counts["accepted_pairs"].values()))
        counter("pairs_cross_image").inc(finished.cross_pairs.num_rows)
        progress.add("samples_planned", len(finished.plans))
        yield beam.pvalue.TaggedOutput(PAIRS, (finished.part, finished.pairs))
        yield beam.pvalue.TaggedOutput(IMAGE_TREES, (finished.part, finished.image_trees))
        if finished.cross_pairs.num_rows:
            yield beam.pvalue.TaggedOutput(CROSS_PAIRS, (finished.part, finished.cross_pairs))
        for plan in finished.plans:
            yield beam.pvalue.TaggedOutput(PLANS, ((plan.split, plan.image_id), plan))
        for source, request in finished.crop_requests:
            yield beam.pvalue.TaggedOutput(PLANS, (source, request))
        yield beam.pvalue.TaggedOutput(COUNTS, finished.counts)

    def finish_bundle(self):
        progress.flush()


class FinishBuckets(beam.PTransform):
    """MinedBucket elements -> sample plans and crop requests keyed by (split, image) (PLANS)
    and counts (COUNTS); writes tables/pairs, tables/image_trees and tables/cross_pairs.

    accepted: the singleton of accepted label pairs (LabelPairStatistics). names: the labels'
    display names for the samples' JSON.
    """

    def __init__(
        self,
        sampling: CrossImageSampling,
        accepted,
        plan_samples: bool,
        root: str,
        names: Mapping[str, str] | None = None,
    ):
        super().__init__()
        self._names = dict(names or {})
        self._sampling = sampling
        self._accepted = accepted
        self._plan_samples = plan_samples
        self._root = root

    def expand(self, mined):
        reservoirs = mined | "Cross-image reservoirs" >> CrossImageReservoirs(self._sampling)
        finished = mined | "Finish" >> beam.ParDo(
            FinishBucket(self._sampling, self._plan_samples, self._names),
            accepted=beam.pvalue.AsSingleton(self._accepted),
            reservoir_table=beam.pvalue.AsSingleton(reservoirs),
        ).with_outputs(PAIRS, IMAGE_TREES, CROSS_PAIRS, PLANS, COUNTS)
        for table in (PAIRS, IMAGE_TREES, CROSS_PAIRS):
            finished[table] | f"Write {table}" >> WriteTable(self._root, table)
        return finished
