"""WriteShards: encoded samples -> deterministic, atomic WebDataset shards (hierdata.shards).

The TFDS `write_from_pcollection` pattern in one composite transform: count the samples of
each split, derive the number of shards, give each sample the shard of a stable hash of its
key, group by shard, write each shard (sorted, atomic, its marker last), then sizes.json.
"""

import apache_beam as beam

from hierdata import shards
from pipelines import progress
from pipelines.counters import counter
from schemas import OutputLayout


def _assign_shard(element, n_shards: dict[str, int]):
    (split, key), sample = element
    shard = int(shards.shard_of([key], n_shards[split])[0])
    return (split, shard), (key, sample)


class _WriteShard(beam.DoFn):
    """Write one shard's tar, then its marker; emit (split, marker)."""

    def __init__(self, root: str, run_fingerprint: str):
        self._layout = OutputLayout(root)
        self._run_fingerprint = run_fingerprint

    def process(self, element):
        (split, shard), members = element
        marker = shards.write_shard(
            self._layout, split, shard, list(members), self._run_fingerprint
        )
        counter("shards").inc()
        progress.add("shards_written")
        yield split, marker

    def finish_bundle(self):
        progress.flush()


def _write_sizes(element, root: str):
    """sizes.json of a split once all its shards are written, then the sweep of what an
    earlier sharding left there (tars and markers of other shard names, temporary files)."""
    split, markers = element
    markers = list(markers)
    layout = OutputLayout(root)
    shards.write_sizes(layout, split, markers)
    shards.sweep_split(layout, split, [str(marker["tar"]) for marker in markers])
    return split, shards.split_summary(markers)


class WriteShards(beam.PTransform):
    """((split, key), encoded sample) -> shards/{split}/ under root; returns the singleton
    {split: {"shards", "samples", "bytes"}} for run.json.

    Args:
        root: the output root.
        samples_per_shard: a split of n samples gets shards.shard_count(n, this) shards.
        run_fingerprint: run.json's "fingerprint", written into every marker.
    """

    def __init__(self, root: str, samples_per_shard: int, run_fingerprint: str):
        super().__init__()
        self._root = root
        self._samples_per_shard = samples_per_shard
        self._run_fingerprint = run_fingerprint

    def expand(self, samples):
        n_shards = (
            samples
            | "Split of each sample" >> beam.Map(lambda element: element[0][0])
            | "Count samples" >> beam.combiners.Count.PerElement()
            | "Shard count"
            >> beam.Map(
                lambda count, per_shard: (count[0], shards.shard_count(count[1], per_shard)),
                self._samples_per_shard,
            )
        )
        return (
            samples
            | "Assign shards" >> beam.Map(_assign_shard, beam.pvalue.AsDict(n_shards))
            | "Group samples by shard" >> beam.GroupByKey()
            | "Write shard tars" >> beam.ParDo(_WriteShard(self._root, self._run_fingerprint))
            | "Group markers by split" >> beam.GroupByKey()
            | "Write sizes.json" >> beam.Map(_write_sizes, self._root)
            | "Shards per split" >> beam.combiners.ToDict()
        )
