"""Tests for training.eval.sections: the step-wise area under a precision-recall curve."""

import numpy as np
import pytest

from training.eval.metrics import PrCurve
from training.eval.sections import pr_area


def test_pr_area_of_a_perfect_then_flat_curve():
    recall, precision = np.array([1.0, 0.5, 0.0]), np.array([0.5, 1.0, np.nan])
    curve = PrCurve(np.zeros(3), precision, recall, np.zeros(3), np.zeros(3))
    assert pr_area(curve) == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)
