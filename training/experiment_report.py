"""The demo experiment's results: every model and score over seeds as a mean with a 95%
t-interval per metric, paired comparisons between models, results.json's rows and results.md.

Models trained with the same seed share initialisation, data order and query subsets, so
comparisons are paired by seed (paired t-test), Holm-adjusted over the metrics of one comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from training.eval.report import Headline, fmt, markdown_table
from training.seed_stats import Interval, PairedDifference, holm, paired_difference, t_interval

# (row name, model folder, score): tuned models by their angle and by cosine, zero-shot by cosine.
ROWS = (
    ("Lorentz", "lorentz", "angle"),
    ("Lorentz", "lorentz", "cosine"),
    ("Euclidean", "euclidean", "angle"),
    ("Euclidean", "euclidean", "cosine"),
    ("zero-shot", "zero_shot", "cosine"),
)
# (Headline field, column title, lower is better); precision@k is the same-class headline.
COLUMNS = (
    ("c2p_precision_at_5", "c→p P@5", False),
    ("c2p_precision_at_10", "c→p P@10", False),
    ("p2c_precision_at_5", "p→c P@5", False),
    ("p2c_precision_at_10", "p→c P@10", False),
    ("c2p_hit_at_10", "c→p hit@10", False),
    ("p2c_hit_at_10", "p→c hit@10", False),
    ("hier_precision", "hier P", False),
    ("hier_recall", "hier R", False),
    ("hier_ot", "OT ↓", True),
    ("pr_area", "PR area", False),
    ("cluster_accuracy", "cluster acc", False),
    ("ami", "AMI", False),
    ("purity", "purity", False),
    ("kendall_tau", "τ radius~depth", False),
    ("re_auc", "RE AUC", False),
)
# (a, b) pairs compared metric by metric: the geometries, and each against its starting point.
COMPARISONS = (
    (("Lorentz", "angle"), ("Euclidean", "angle")),
    (("Lorentz", "angle"), ("zero-shot", "cosine")),
    (("Euclidean", "angle"), ("zero-shot", "cosine")),
)


def _interval_json(interval: Interval | None, values: Sequence) -> dict | None:
    if interval is None:
        return None
    return {"mean": interval.mean, "ci_low": interval.low, "ci_high": interval.high,
            "n": interval.n, "values": list(values)}  # fmt: skip


@dataclass(frozen=True)
class ResultRow:
    """One model scored one way over the seeds: per metric the per-seed values and their
    interval (None when a seed lacks the value), and the final training loss likewise."""

    model: str
    score: str
    values: dict[str, list[float | None]]
    final_losses: list[float | None]

    def interval(self, key: str) -> Interval | None:
        values = self.values[key]
        return None if None in values or not values else t_interval(values)

    def loss_interval(self) -> Interval | None:
        losses = self.final_losses
        return None if None in losses or not losses else t_interval(losses)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "score": self.score,
            "final_loss": _interval_json(self.loss_interval(), self.final_losses),
            "metrics": {
                key: _interval_json(self.interval(key), self.values[key]) for key, _, _ in COLUMNS
            },
        }


def result_rows(
    headlines: dict[str, list[dict[str, Headline]]], losses: dict[str, list[float | None]]
) -> list[ResultRow]:
    """One row per ROWS entry from per-seed headlines.

    Args:
        headlines: model folder -> per seed (in seed order) score -> Headline.
        losses: model folder -> per-seed final training loss (absent for zero-shot).
    """
    rows = []
    for name, folder, score in ROWS:
        per_seed = [by_score[score] for by_score in headlines[folder]]
        values = {key: [asdict(h)[key] for h in per_seed] for key, _, _ in COLUMNS}
        rows.append(ResultRow(name, score, values, losses.get(folder, [None] * len(per_seed))))
    return rows


@dataclass(frozen=True)
class Comparison:
    """Model a minus model b on one metric, paired by seed; ``better`` says which direction is
    an improvement (lower for OT)."""

    a: str
    b: str
    metric: str
    title: str
    lower_is_better: bool
    result: PairedDifference

    def to_json(self) -> dict:
        difference = self.result.difference
        return {"a": self.a, "b": self.b, "metric": self.metric, "mean_difference":
                difference.mean, "ci_low": difference.low, "ci_high": difference.high,
                "p_value": self.result.p_value, "p_holm": self.result.p_holm,
                "significant": self.result.significant()}  # fmt: skip


def comparisons(rows: list[ResultRow]) -> list[Comparison]:
    """Every COMPARISONS pair on every metric both rows have, Holm-adjusted per pair."""
    by = {(r.model, r.score): r for r in rows}
    out = []
    for a, b in COMPARISONS:
        family = [
            Comparison(f"{a[0]}/{a[1]}", f"{b[0]}/{b[1]}", key, title, lower,
                       paired_difference(by[a].values[key], by[b].values[key]))
            for key, title, lower in COLUMNS
            if None not in by[a].values[key] + by[b].values[key]
        ]  # fmt: skip
        adjusted = holm([c.result.p_value for c in family])
        for c, p_holm in zip(family, adjusted, strict=True):
            result = PairedDifference(c.result.difference, c.result.p_value, p_holm)
            out.append(Comparison(c.a, c.b, c.metric, c.title, c.lower_is_better, result))
    return out


def _cell(interval: Interval | None) -> str:
    """``mean [low, high]`` (the mean alone for one seed)."""
    if interval is None:
        return "–"
    if interval.low is None:
        return fmt(interval.mean)
    return f"{fmt(interval.mean)} [{fmt(interval.low)}, {fmt(interval.high)}]"


def tables(rows: list[ResultRow]) -> list[str]:
    """Two markdown tables, each cell a mean and its 95% interval: retrieval, per model and
    score; the embedding's structure (clustering, radial probes; the same for every score) and
    the final training loss, per model."""
    retrieval, structure = COLUMNS[:10], COLUMNS[10:]
    header = ["model", "score", *(title for _, title, _ in retrieval)]
    body = [[r.model, r.score, *(_cell(r.interval(key)) for key, _, _ in retrieval)]
            for r in rows]  # fmt: skip
    out = [*markdown_table(header, body), ""]
    models = [r for r in rows if r.score == "angle" or r.model == "zero-shot"]
    header = ["model", *(title for _, title, _ in structure), "final loss"]
    body = [[r.model, *(_cell(r.interval(key)) for key, _, _ in structure),
             _cell(r.loss_interval())] for r in models]  # fmt: skip
    return out + [*markdown_table(header, body), ""]


def findings(found: list[Comparison], seeds: int) -> list[str]:
    """What the comparisons show: each pair's significant differences (paired t-test over seeds,
    Holm-adjusted over the metrics) and the Lorentz - Euclidean differences with intervals."""
    if seeds < 2:
        return ["- One seed: no interval and no test; run with --seeds 2 or more to compare."]
    lines = []
    for a, b in {(c.a, c.b): None for c in found}:
        family = [c for c in found if (c.a, c.b) == (a, b)]
        tested = [c for c in family if c.result.p_value is not None]
        better = [c for c in tested if c.result.significant() and _improves(c)]
        worse = [c for c in tested if c.result.significant() and not _improves(c)]
        constant = [c for c in family if c.result.p_value is None]
        excluding = [
            c
            for c in tested
            if c.result.difference.low is not None
            and (c.result.difference.low > 0 or c.result.difference.high < 0)
        ]
        lines.append(
            f"- {a} vs {b} ({seeds} seeds, paired t-test, Holm over {len(tested)} metrics, "
            f"α = 0.05): {a} significantly better on {_names(better)}; worse on {_names(worse)}; "
            f"no significant difference on the other {len(tested) - len(better) - len(worse)}"
            + (f"; the same difference every seed (untested): {_names(constant)}" if constant
               else "")
            + ". Uncorrected, the 95% interval of the difference excludes 0 for: "
            + (", ".join(f"{c.title} {c.result.difference.mean:+.3f}" for c in excluding)
               or "none") + "."
        )  # fmt: skip
    geometry = [c for c in found if c.a == "Lorentz/angle" and c.b == "Euclidean/angle"]
    if geometry:
        lines.append("- Lorentz − Euclidean (angle), mean difference [95% CI], p (Holm):")
        lines += [
            f"  - {c.title}: {_cell(c.result.difference)}, p = {fmt(c.result.p_value)} "
            f"({fmt(c.result.p_holm)})"
            for c in geometry
        ]
    return lines


def _improves(comparison: Comparison) -> bool:
    return (comparison.result.difference.mean < 0) == comparison.lower_is_better


def _names(items: list[Comparison]) -> str:
    return ", ".join(c.title for c in items) or "none"
