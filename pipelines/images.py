"""Beam adapters for the image stages: decode each image once, cut its crops and those other
images asked for, join each sample's crops by key, write the shards.
"""

import apache_beam as beam
import pyarrow as pa

from hierdata import runinfo, samples
from hierdata.crops import render_file
from hierdata.image_files import ImageError, image_url, use_anonymous_s3
from pipelines import progress
from pipelines.config import Crops, Inputs
from pipelines.counters import counter
from pipelines.tables import WriteTable
from pipelines.write_shards import WriteShards
from schemas import REJECTS

IMAGE_REJECTS = "image_rejects"


class DecodeAndCrop(beam.DoFn):
    """Decode one source image once; cut its own crops and those other images asked for.

    Emits (image, ("own", ...)) for its own sample and (target, ("cross", ...)) for every
    delivered crop; a missing or undecodable image becomes a reject row instead.
    """

    def __init__(self, inputs: Inputs, crops: Crops):
        self._inputs = inputs
        self._crops = crops

    def setup(self):
        use_anonymous_s3(self._inputs.s3_anonymous)  # a worker process has its own fsspec config

    def process(self, element):
        (split, image_id), values = element
        plans = [v for v in values if isinstance(v, samples.SamplePlan)]
        if not plans:  # only requests: cannot happen, every source has kept boxes
            return
        plan = plans[0]
        samples.add_requests(plan, [v for v in values if not isinstance(v, samples.SamplePlan)])
        inputs = self._inputs
        url = image_url(inputs.images, inputs.input, split, image_id)
        try:
            crops, size = render_file(
                url,
                plan.requests,
                self._crops.crop_size,
                self._crops.jpeg_quality,
                inputs.max_image_bytes,
                inputs.image_timeout,
            )
        except ImageError as err:
            counter(f"images_{err.reason}").inc()
            progress.add("images_rejected")
            yield beam.pvalue.TaggedOutput(IMAGE_REJECTS, err.reject_row(split, url, image_id))
            return
        counter("images_decoded").inc()
        progress.add("images_decoded")
        yield (split, image_id), ("own", (plan.metadata, size, crops))
        for request, targets in plan.deliveries.items():
            for target, key in targets:
                yield (split, target), ("cross", (key, crops[request]))

    def finish_bundle(self):
        progress.flush()


def assemble_sample(element):
    """Join an image's own crops with its delivered cross-image crops: ((split, key), sample),
    or nothing when the image itself failed to decode (its reject is recorded)."""
    (split, image_id), values = element
    own = [payload for kind, payload in values if kind == "own"]
    if not own:
        return
    metadata, size, crops = own[0]
    cross = dict(payload for kind, payload in values if kind == "cross")
    counter("samples").inc()
    yield (split, image_id), samples.finish_sample(metadata, size, crops, cross)


class ImageStages(beam.PTransform):
    """Sample plans and crop requests keyed by (split, image) -> shards, tables/rejects rows for
    images that could not be read; returns run.json's {"shards", "image_rejects"} singletons."""

    def __init__(
        self,
        inputs: Inputs,
        crops: Crops,
        samples_per_shard: int,
        root: str,
        run_fingerprint: str,
    ):
        super().__init__()
        self._inputs = inputs
        self._crops = crops
        self._samples_per_shard = samples_per_shard
        self._root = root
        self._run_fingerprint = run_fingerprint

    def expand(self, plans):
        decoded = (
            plans
            | "Group plans and requests" >> beam.GroupByKey()
            | "Decode and crop"
            >> beam.ParDo(DecodeAndCrop(self._inputs, self._crops)).with_outputs(
                IMAGE_REJECTS, main="crops"
            )
        )
        image_rejects = decoded[IMAGE_REJECTS] | "Collect image rejects" >> beam.combiners.ToList()
        (
            image_rejects
            | "Image reject table"
            >> beam.Map(lambda rows: ("images", pa.Table.from_pylist(rows, schema=REJECTS)))
            | "Write image rejects" >> WriteTable(self._root, "rejects")
        )
        shards = (
            decoded.crops
            | "Group crops by image" >> beam.GroupByKey()
            | "Assemble samples" >> beam.FlatMap(assemble_sample)
            | "Write shards"
            >> WriteShards(self._root, self._samples_per_shard, self._run_fingerprint)
        )
        summary = image_rejects | "Summarise image rejects" >> beam.Map(
            runinfo.image_reject_summary
        )
        return {"shards": shards, "image_rejects": summary}
