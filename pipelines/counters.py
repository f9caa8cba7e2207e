"""The pipeline's Beam metrics counters (progress in the runner's UI; run.json has the counts)."""

from apache_beam.metrics import Metrics

NAMESPACE = "hierdata"


def counter(name: str):
    """The counter `name` in the pipeline's namespace."""
    return Metrics.counter(NAMESPACE, name)
