"""Statistics over training seeds: the mean with a 95% t-interval, paired differences between two
models trained with the same seeds, and Holm's correction over a family of tests.

With n seeds the interval uses Student's t with n - 1 degrees of freedom; one seed gives no
interval and no test (None), never a made-up one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """Mean of n values and its two-sided CONFIDENCE t-interval (None below two values)."""

    mean: float
    low: float | None
    high: float | None
    n: int


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """``mean ± t_{(1+confidence)/2, n-1} * sd / sqrt(n)`` (sd with n - 1 in the denominator)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return Interval(mean, None, None, len(values))
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1)
    half /= math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, len(values))


@dataclass(frozen=True)
class PairedDifference:
    """a - b over seeds paired by seed: the mean difference with its t-interval, the paired
    t-test's two-sided p-value (None below two seeds) and its Holm-adjusted value (holm)."""

    difference: Interval
    p_value: float | None
    p_holm: float | None = None

    def significant(self, alpha: float = 1 - CONFIDENCE) -> bool:
        """True when the Holm-adjusted p-value is below ``alpha``."""
        return self.p_holm is not None and self.p_holm < alpha


def paired_difference(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """Paired t-test of a against b, value i of each from seed i (same initialisation, data order
    and query subsets), so seed-to-seed variation common to both cancels.

    Differences that are all equal leave nothing to test (the t statistic is infinite or
    undefined, scipy returns nan): p is None then, as for one seed, and the interval a point.
    """
    differences = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    interval = t_interval(differences)
    if len(differences) < 2:
        return PairedDifference(interval, None)
    if np.ptp(differences) == 0:
        return PairedDifference(interval, None)
    return PairedDifference(interval, float(stats.ttest_rel(a, b).pvalue))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None entries are skipped): the i-th
    smallest of m becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``, so the family-wise error
    stays at most alpha however many metrics are compared."""
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[i] = running
    return adjusted
