"""WriteRunRecord: run.json, written last, with the summed counts and every stage's summary.

hierdata.runinfo decides its content and status; a run past a reject bound (input rows, or
images) writes run.json with status "failed", then fails with the bound's one-line error.
"""

from collections.abc import Mapping, Sequence

import apache_beam as beam

from hierdata import io, runinfo
from schemas import OutputLayout


def _write_run_record(
    _, counts: dict, started: dict, bounds: tuple[float, float], root: str, **summaries
) -> None:
    record, error = runinfo.final_record(started, counts, bounds[0], summaries, bounds[1])
    io.write_json(OutputLayout(root).run_json, record)
    if error is not None:
        raise error


class WriteRunRecord(beam.PTransform):
    """Applied to the pipeline: sums `counts` and writes OUTPUT/run.json once all is done.

    Args:
        started: the launcher's record (runinfo.start_record).
        counts: PCollections of count dicts (runinfo counts) from any stages.
        summaries: run.json key -> singleton PCollection of that stage's summary.
        max_reject_fraction, max_image_reject_fraction: the row and image reject bounds.
        root: the output root.
    """

    def __init__(
        self,
        started: dict,
        counts: Sequence,
        summaries: Mapping,
        max_reject_fraction: float,
        max_image_reject_fraction: float,
        root: str,
    ):
        super().__init__()
        self._started = started
        self._counts = tuple(counts)
        self._summaries = dict(summaries)
        self._bounds = (max_reject_fraction, max_image_reject_fraction)
        self._root = root

    def expand(self, pipeline):
        counts = (
            self._counts
            | "All counts" >> beam.Flatten()
            | "Sum counts" >> beam.CombineGlobally(runinfo.merge_all)
        )
        side_inputs = {name: beam.pvalue.AsSingleton(p) for name, p in self._summaries.items()}
        return (
            pipeline
            | "Start" >> beam.Create([None])
            | "Write run.json"
            >> beam.Map(
                _write_run_record,
                beam.pvalue.AsSingleton(counts),
                self._started,
                self._bounds,
                self._root,
                **side_inputs,
            )
        )
