"""Training metrics as TensorBoard event files, beside metrics.jsonl (rank 0 only).

`tensorboard --logdir OUTPUT/tensorboard` plots every numeric field of a metrics.jsonl line.
"""

from numbers import Real

from torch.utils.tensorboard import SummaryWriter

TAG_PREFIX = "train/"


class ScalarLog:
    """Writes each metrics record's numbers as scalars at its step.

    Args:
        folder: the event files' folder (TrainOutput.tensorboard_dir).
        start_step: the step training (re)starts from (its checkpoint's): on a resume, the
            interrupted run's events after it are purged, as metrics.jsonl is cut back to it.
    """

    def __init__(self, folder: str, start_step: int) -> None:
        # purge_step drops events at and after it: the first step this run writes
        purge = start_step + 1 if start_step else None
        self._writer = SummaryWriter(folder, purge_step=purge)

    def write(self, record: dict) -> None:
        """record: one metrics.jsonl line; "step" is the x axis, None and non-numbers skipped."""
        step = int(record["step"])
        for key, value in record.items():
            if key != "step" and isinstance(value, Real) and not isinstance(value, bool):
                self._writer.add_scalar(TAG_PREFIX + key, float(value), step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
