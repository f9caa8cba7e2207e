"""The pipeline graph, one named composite transform per stage group.

read -> validate -> bucket by image -> mine -> sum label-pair counts -> accepted pairs (side
input) -> filter, trees, cross-image -> decode once per image -> assemble -> shards -> run.json.
"""

import apache_beam as beam

from pipelines import annotations, finish
from pipelines.annotations import MineImages, ReadAnnotations
from pipelines.finish import FinishBuckets
from pipelines.images import ImageStages
from pipelines.launch import LaunchPlan
from pipelines.run_record import WriteRunRecord
from pipelines.statistics import ACCEPTED, LabelPairStatistics


def build(pipeline: beam.Pipeline, launch: LaunchPlan, started: dict) -> None:
    """Add every stage to `pipeline`.

    Args:
        launch: what the launcher found (config, chunks, labels, hierarchy, buckets).
        started: the launcher's run record (runinfo.start_record), completed by the last stage.
    """
    config = launch.config
    root = config.output
    read = pipeline | "Read annotations" >> ReadAnnotations(
        launch.chunks, launch.headers, frozenset(launch.names), root, config.inputs.image_ids
    )
    mined = read.rows | "Mine images" >> MineImages(launch.n_buckets, config.mining, root)
    summaries = mined[annotations.LABEL_PAIR_COUNTS] | "Label-pair statistics" >> (
        LabelPairStatistics(
            launch.names,
            launch.hierarchy,
            config.inputs.hierarchy,
            config.mining,
            root,
            started["fingerprint"],
        )
    )
    accepted = summaries.pop(ACCEPTED)
    finished = mined.buckets | "Finish buckets" >> FinishBuckets(
        config.cross_image, accepted, not config.skip_images, root, launch.names
    )
    if not config.skip_images:
        summaries |= finished[finish.PLANS] | "Image stages" >> ImageStages(
            config.inputs,
            config.crops,
            config.sharding.samples_per_shard,
            root,
            started["fingerprint"],
        )
    counts = (read[annotations.COUNTS], mined[annotations.COUNTS], finished[finish.COUNTS])
    pipeline | "Run record" >> WriteRunRecord(
        started,
        counts,
        summaries,
        config.max_reject_fraction,
        config.max_image_reject_fraction,
        root,
    )
