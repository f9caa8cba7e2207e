"""Tests for training.seed_stats: t-intervals, paired t-tests and Holm's adjustment on values
computed by hand."""

import math

import pytest

from training.seed_stats import Interval, holm, paired_difference, t_interval

T_975_DF2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom


def test_t_interval_of_three_values():
    # mean 2, sd 1: half width t * 1 / sqrt(3).
    interval = t_interval([1.0, 2.0, 3.0])
    half = T_975_DF2 / math.sqrt(3)
    assert (interval.mean, interval.n) == (2.0, 3)
    assert (interval.low, interval.high) == pytest.approx((2 - half, 2 + half))


def test_one_seed_has_no_interval_and_no_test():
    assert t_interval([0.7]) == Interval(0.7, None, None, 1)
    single = paired_difference([0.7], [0.5])
    assert single.p_value is None and not single.significant()
    assert single.difference.mean == pytest.approx(0.2)


def test_paired_difference_by_hand():
    # Differences 1, 2, 2: mean 5/3, sd 1/sqrt(3), t = (5/3) / (1/3) = 5 with 2 df.
    result = paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 1.0])
    assert result.difference.mean == pytest.approx(5 / 3)
    assert result.p_value == pytest.approx(0.03772, abs=1e-4)
    # Constant differences (a discrete metric moving by one query each seed): nothing to test.
    constant = paired_difference([1.0, 2.0], [0.5, 1.5])
    assert constant.p_value is None and constant.difference.mean == 0.5
    assert constant.difference.low == constant.difference.high == 0.5


def test_holm_step_down_adjustment():
    # Sorted 0.01, 0.03, 0.04 of m = 3: 0.03, max(0.03, 0.06), max(0.06, 0.04).
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([None, 0.5, 0.9]) == [None, 1.0, 1.0]
    result = paired_difference([1.0, 2.0, 3.0], [0.0, 0.0, 1.0])
    assert not result.significant()  # not adjusted yet: no Holm value
