"""Beam adapters for trees, cross-image sampling and the shard stage.

Per-image work is keyed by (split, image_id): an image is decoded once, cuts its own crops and
the ones other images asked for, and each sample is assembled from a keyed join.
"""

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from hierdata import cross_image, io, runinfo, samples, shards, stats, trees
from hierdata.crops import ImageError, render_crops
from hierdata.errors import InputError
from schemas import PAIRS, OutputLayout

NAMESPACE = "hierdata"
PAIRS_OUT, TREES_OUT, CROSS_OUT = "pairs", "image_trees", "cross_pairs"
PLANS, COUNTS, REJECTS = "plans", "counts", "image_rejects"


def _counter(name: str):
    return Metrics.counter(NAMESPACE, name)


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


class FinishBucket(beam.DoFn):
    """Accepted pairs, per-image trees, cross-image pairs and sample plans of one bucket."""

    def __init__(self, cross_image_samples: int, seed: int, plan_samples: bool):
        self._samples = cross_image_samples
        self._seed = seed
        self._plan = plan_samples
        self._reservoir_table = None
        self._reservoirs = None

    def _lookup(self, table: pa.Table):
        if table is not self._reservoir_table:  # convert the side input once per worker
            self._reservoir_table = table
            self._reservoirs = cross_image.reservoirs_from_table(table)
        return self._reservoirs

    def process(self, element, accepted, reservoir_table):
        part, mined = element
        boxes, image_box = mined["boxes"], mined["image_box"]
        box_box = stats.filter_accepted(mined["candidates"], accepted).cast(PAIRS)
        pairs = pa.concat_tables([image_box.cast(PAIRS), box_box])
        image_trees = trees.image_trees(boxes, box_box)
        cross = cross_image.sample_cross_image(
            boxes, self._lookup(reservoir_table), self._samples, self._seed
        )
        _counter("pairs_box_box_accepted").inc(box_box.num_rows)
        _counter("pairs_cross_image").inc(cross.num_rows)
        yield beam.pvalue.TaggedOutput(PAIRS_OUT, (part, pairs))
        yield beam.pvalue.TaggedOutput(TREES_OUT, (part, image_trees))
        if cross.num_rows:
            yield beam.pvalue.TaggedOutput(CROSS_OUT, (part, cross))
        planned: dict[str, int] = {}
        if self._plan:
            for plan in samples.plan_samples(boxes, pairs, image_trees, cross):
                planned[plan.split] = planned.get(plan.split, 0) + 1
                yield beam.pvalue.TaggedOutput(PLANS, ((plan.split, plan.image_id), plan))
            for key, request in samples.crop_requests_by_source(cross):
                yield beam.pvalue.TaggedOutput(PLANS, (key, request))
        yield beam.pvalue.TaggedOutput(
            COUNTS,
            {
                "accepted_pairs": runinfo.count_per_split(box_box),
                "cross_image_pairs": runinfo.count_per_split(cross),
                "samples_planned": planned,
            },
        )


class DecodeAndCrop(beam.DoFn):
    """Decode one source image once; cut its own crops and those other images asked for.

    Emits (image, ("own", ...)) for its own sample and (target, ("cross", ...)) for every
    delivered crop; a missing or undecodable image becomes a reject row instead.
    """

    def __init__(self, images: str, input_root: str, crop_size: int, quality: int):
        self._images = images
        self._input = input_root
        self._crop_size = crop_size
        self._quality = quality

    def process(self, element):
        (split, image_id), values = element
        plans = [v for v in values if isinstance(v, samples.SamplePlan)]
        if not plans:  # only requests: cannot happen, every source has kept boxes
            return
        plan = plans[0]
        samples.add_requests(plan, [v for v in values if not isinstance(v, samples.SamplePlan)])
        url = samples.image_url(self._images, self._input, split, image_id)
        try:
            crops, size = _render(url, plan, self._crop_size, self._quality)
        except ImageError as err:
            _counter(f"images_{err.reason}").inc()
            yield beam.pvalue.TaggedOutput(
                REJECTS,
                {
                    "split": split,
                    "file": url,
                    "line": 0,
                    "reason": err.reason,
                    "raw": f"{image_id}: {err.detail}"[:1000],
                },
            )
            return
        _counter("images_decoded").inc()
        yield (split, image_id), ("own", (plan.metadata, size, crops))
        for request, targets in plan.deliveries.items():
            for target, key in targets:
                yield (split, target), ("cross", (key, crops[request]))


def _render(url: str, plan: samples.SamplePlan, crop_size: int, quality: int):
    try:
        data = io.read_bytes(url)
    except InputError as err:
        raise ImageError("image_missing", str(err)) from err
    return render_crops(data, plan.requests, crop_size, quality)


class AssembleSample(beam.DoFn):
    """Join an image's own crops with its delivered cross-image crops; pick its shard."""

    def process(self, element, n_shards):
        (split, image_id), values = element
        own = [payload for kind, payload in values if kind == "own"]
        if not own:  # the image itself failed to decode: its reject is recorded
            return
        metadata, size, crops = own[0]
        cross = dict(payload for kind, payload in values if kind == "cross")
        sample = samples.finish_sample(metadata, size, crops, cross)
        shard = int(shards.shard_of([image_id], n_shards[split])[0])
        _counter("samples").inc()
        yield (split, shard), (image_id, sample)


class WriteShard(beam.DoFn):
    """Write one shard tar (samples sorted inside), then its marker; emit the marker."""

    def __init__(self, root: str):
        self._layout = OutputLayout(root)

    def process(self, element):
        (split, shard), members = element
        marker = shards.write_shard(self._layout, split, shard, list(members))
        _counter("shards").inc()
        yield split, marker


def write_sizes(element, root: str):
    split, markers = element
    markers = sorted(markers, key=lambda m: m["shard"])
    shards.write_sizes(OutputLayout(root), split, markers)
    return split, {
        "shards": len(markers),
        "samples": sum(m["samples"] for m in markers),
        "bytes": sum(m["bytes"] for m in markers),
    }
