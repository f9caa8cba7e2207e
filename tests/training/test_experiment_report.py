"""Tests for training.experiment_report: rows of per-seed headlines with intervals, paired and
Holm-adjusted comparisons, and the findings text, on made-up headline numbers."""

from dataclasses import fields

import pytest

from training.eval.report import Headline
from training.experiment_report import comparisons, findings, result_rows, tables


def _headline(score: str, value: float) -> Headline:
    """Every metric at ``value`` (OT too), so differences between models are known."""
    numbers = {f.name: value for f in fields(Headline) if f.name not in ("score", "hier_k")}
    return Headline(score=score, hier_k=0.25, **numbers)


def _headlines(per_seed: list[float]) -> list[dict[str, Headline]]:
    return [{"angle": _headline("angle", v), "cosine": _headline("cosine", v)} for v in per_seed]


def test_rows_comparisons_and_findings_on_known_values():
    headlines = {
        "lorentz": _headlines([0.50, 0.61, 0.72]),
        "euclidean": _headlines([0.40, 0.50, 0.60]),  # Lorentz - Euclidean: 0.10, 0.11, 0.12
        "zero_shot": [{"cosine": _headline("cosine", v)} for v in (0.2, 0.2, 0.2)],
    }
    losses = {"lorentz": [1.0, 2.0, 3.0], "euclidean": [1.0, 1.0, 1.0]}
    rows = result_rows(headlines, losses)
    assert [(r.model, r.score) for r in rows][0] == ("Lorentz", "angle")
    interval = rows[0].interval("hier_precision")
    assert interval.mean == pytest.approx(0.61) and interval.n == 3
    assert rows[4].loss_interval() is None  # zero-shot has no training loss
    found = comparisons(rows)
    geometry = [c for c in found if (c.a, c.b) == ("Lorentz/angle", "Euclidean/angle")]
    assert len(geometry) == 15
    hier = next(c for c in geometry if c.metric == "hier_precision")
    assert hier.result.difference.mean == pytest.approx(0.11)
    # Differences 0.10, 0.11, 0.12: t = 0.11 / (0.01 / sqrt 3) = 19.05, p = 0.00274 with 2 df;
    # all 15 metrics have the same p, so Holm multiplies the smallest by 15 (capped by later).
    assert hier.result.p_value == pytest.approx(0.002744, rel=1e-3)
    assert hier.result.p_holm == pytest.approx(15 * 0.002744, rel=1e-3)
    assert hier.result.significant()
    ot = next(c for c in geometry if c.metric == "hier_ot")
    assert ot.lower_is_better
    text = "\n".join(findings(found, 3))
    # Higher OT is worse: Lorentz is significantly better on 14 metrics and worse on OT.
    assert "Lorentz/angle significantly better on c→p P@5" in text and "worse on OT ↓" in text
    # Against the constant zero-shot the differences vary too (0.3, 0.41, 0.52): tested.
    assert "hier P: 0.110 [" in text
    assert "| Lorentz | angle |" in "\n".join(tables(rows))


def test_one_seed_findings_say_nothing_is_tested():
    assert findings([], 1) == [
        "- One seed: no interval and no test; run with --seeds 2 or more to compare."
    ]
