"""The evaluation report as data and text: report.json's JSON-safe form, its headline numbers,
and report.md (the model, the data and one markdown table per metric family).

report.md reads the report as written to report.json, so both always agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass

import numpy as np

from schemas.training_layout import (
    PR_CURVES_PNG,
    RADIUS_BY_DEPTH_PNG,
    RETRIEVAL_GRID_PNG,
    plot_name,
)
from training.eval.metrics import CHILD_TO_PARENT, PARENT_TO_CHILD, SAME_CLASS_KS

ARROWS = {PARENT_TO_CHILD: "parent → child", CHILD_TO_PARENT: "child → parent"}


def clean(value):
    """JSON-safe copy: typed rows become their JSON objects (``to_json``, else their fields),
    NaN and inf become None, numpy scalars and arrays plain Python."""
    if is_dataclass(value) and not isinstance(value, type):
        to_json = getattr(value, "to_json", None)
        return clean(
            to_json() if to_json else {f.name: getattr(value, f.name) for f in fields(value)}
        )
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fmt(value, digits: int = 3) -> str:
    """A number as the report shows it: ``digits`` decimals, "–" when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]


def _find(rows: list[dict], **match) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


@dataclass(frozen=True)
class Headline:
    """The few numbers a comparison table needs, for one score.

    c2p/p2c precision@k and hit@k: same-class retrieval (the paper's Table 1 is precision@k);
    hier P/R/OT: parent -> child at the first Top-K (hier_k); chance_precision: a random
    ranking's parent -> child precision; PR area: parent -> child; clustering accuracy, AMI and
    purity: means over tree depths; tau: radius vs depth over all crops; RE AUC: the radial
    entailment probe with the centroid root; knn: accuracy (None without --knn_folder). None
    where the report lacks the number.
    """

    score: str
    c2p_precision_at_5: float | None
    c2p_precision_at_10: float | None
    p2c_precision_at_5: float | None
    p2c_precision_at_10: float | None
    c2p_hit_at_10: float | None
    p2c_hit_at_10: float | None
    hier_k: int | float | None
    hier_precision: float | None
    hier_recall: float | None
    hier_ot: float | None
    chance_precision: float | None
    pr_area: float | None
    cluster_accuracy: float | None
    ami: float | None
    purity: float | None
    kendall_tau: float | None
    re_auc: float | None
    knn: float | None


def headline(report: dict, score: str | None = None) -> Headline:
    """The headline of a report (as written) for one score (default: the primary score)."""
    score = score or report["model"]["primary_score"]
    c2p = _find(report["same_class"], direction=CHILD_TO_PARENT, score=score) or {}
    p2c = _find(report["same_class"], direction=PARENT_TO_CHILD, score=score) or {}
    hier = _find(report["hierarchical"], direction=PARENT_TO_CHILD, score=score) or {}
    curve = _find(report["pr_curves"], direction=PARENT_TO_CHILD, score=score) or {}
    clusters = report.get("clustering") or []
    probe = _find(report["radial"]["entailment"], root="centroid") or {}

    def mean(key: str) -> float | None:
        return float(np.mean([c[key] for c in clusters])) if clusters else None

    knn = report.get("knn") or {}
    return Headline(
        score=score,
        c2p_precision_at_5=c2p.get("precision_at_5"),
        c2p_precision_at_10=c2p.get("precision_at_10"),
        p2c_precision_at_5=p2c.get("precision_at_5"),
        p2c_precision_at_10=p2c.get("precision_at_10"),
        c2p_hit_at_10=c2p.get("hit_at_10"),
        p2c_hit_at_10=p2c.get("hit_at_10"),
        hier_k=hier.get("k"),
        hier_precision=hier.get("precision"),
        hier_recall=hier.get("recall"),
        hier_ot=hier.get("ot"),
        chance_precision=report["chance_precision"].get(PARENT_TO_CHILD),
        pr_area=curve.get("area"),
        cluster_accuracy=mean("accuracy"),
        ami=mean("ami"),
        purity=mean("purity"),
        kendall_tau=report["radial"]["all_crops"]["kendall_tau"],
        re_auc=probe.get("auc"),
        knn=knn.get("accuracy"),
    )


def _summary(report: dict) -> list[str]:
    """The title, the model, the data and the embeddings."""
    model, data, emb = report["model"], report["data"], report["embedding"]
    config = report["config"]
    described = ", ".join(f"{k}={fmt(v)}" for k, v in model.items() if k != "scores")
    return [
        "# Evaluation report",
        "",
        f"Model: {described}",
        "",
        f"Data: {data['images']} images (parents), {data['children']} child crops "
        f"(box area {config['min_child_area']}–{config['max_child_area']}"
        f" of the image), {data['boxes']} boxes in all; {data['parent_queries']} parent and "
        f"{data['child_queries']} child queries (seed {config['seed']}); "
        f"{data['labels_in_tree']} tree labels; "
        f"{data['boxes_with_labels_not_in_tree']} boxes with labels not in the tree.",
        "",
        f"Embeddings: {emb['crops']} crops × {emb['dim']} dims, cache "
        f"{'hit' if emb['cache_hit'] else 'miss'} ({emb['key'][:12]}).",
        "",
    ]


def _same_class(rows: list[dict]) -> list[str]:
    ks = [k for k in SAME_CLASS_KS if any(f"precision_at_{k}" in r for r in rows)]
    out = [
        "## Same-class retrieval (precision@k, the paper's Table 1; hit@k beside it)",
        "",
        "precision@k: the mean fraction of the first k retrieved that share a class with the "
        "query; hit@k: the share of queries with at least one among their first k. "
        "child → parent: an image holding a box of the crop's class; parent → child (one query "
        "per whole image): a crop whose class is among the image's classes. Queries without "
        "any same-class candidate are left out.",
        "",
    ]
    return out + markdown_table(
        ["direction", "score", "queries", "candidates", *(f"P@{k}" for k in ks),
         *(f"hit@{k}" for k in ks)],
        [
            [ARROWS[r["direction"]], r["score"], r["queries"], r["candidates"],
             *(r.get(f"precision_at_{k}") for k in ks), *(r.get(f"hit_at_{k}") for k in ks)]
            for r in rows
        ],
    )  # fmt: skip


def _hierarchical(rows: list[dict], chance_precision: dict[str, float]) -> list[str]:
    chance = ", ".join(f"{ARROWS[d]} {fmt(v)}" for d, v in chance_precision.items())
    out = [
        "",
        "## Hierarchical retrieval (ground truth: down(labels(I)))",
        "",
        "OT: 1-D Wasserstein distance in label bins (depth-first order, plus `others`); "
        f"parent → child only. Precision of a random ranking: {chance}.",
        "",
    ]
    keys = ("score", "k", "count", "queries", "precision", "recall", "ot")
    return out + markdown_table(
        ["direction", "score", "K", "count", "queries", "precision", "recall", "OT"],
        [[ARROWS[r["direction"]], *(r[key] for key in keys)] for r in rows],
    )


def _pr_curves(rows: list[dict]) -> list[str]:
    out = [
        "",
        "## Precision-recall curves (area, step-wise)",
        "",
        f"![PR]({plot_name(PR_CURVES_PNG)})",
        "",
    ]
    return out + markdown_table(
        ["direction", "score", "area"],
        [[ARROWS[r["direction"]], r["score"], r["area"]] for r in rows],
    )


def _clustering(rows: list[dict]) -> list[str]:
    out = [
        "",
        "## Hierarchy clustering (Ward, cut at the labels of each depth)",
        "",
        "accuracy: HierNet's clustering accuracy (clusters matched one-to-one to labels, "
        "Hungarian).",
        "",
    ]
    keys = ("depth", "clusters", "items", "accuracy", "ami", "purity", "hhot")
    return out + markdown_table(
        ["depth", "clusters", "items", "accuracy", "AMI", "purity", "HHOT"],
        [[r[key] for key in keys] for r in rows],
    )


def _radial(radial: dict) -> list[str]:
    out = [
        "",
        "## Radial probes",
        "",
        "Entailment angle (Radial Embeddings): ext(u − r, v − r) with the root r in the "
        "origin's place, over the per-image tree's entailment pairs u ⊃ v and as many unrelated "
        "pairs (v outside down(labels(u))); AUC: the chance that an entailment pair has the "
        "smaller angle (0.5: no signal). Lorentz embeddings in the tangent space at the origin.",
        "",
    ]
    out += markdown_table(
        ["root", "pairs", "entailed (°)", "unrelated (°)", "AUC"],
        [
            [r["root"], r["pairs"], _degrees(r["entailed_mean"]),
             _degrees(r["unrelated_mean"]), r["auc"]]
            for r in radial["entailment"]
        ],
    )  # fmt: skip
    out += ["", f"![radius]({plot_name(RADIUS_BY_DEPTH_PNG)})", ""]
    for name in ("all_crops", "boxes_only"):
        probe = radial[name]
        out += [
            f"Radius vs label-tree depth, {name} (images at depth 0): Kendall τ = "
            f"{fmt(probe['kendall_tau'])} (p = {fmt(probe['p_value'], 4)})",
            "",
        ]
    return out + markdown_table(
        ["depth", "items", "mean radius"],
        [[r["depth"], r["items"], r["mean_radius"]] for r in radial["all_crops"]["per_depth"]],
    )


def _degrees(radians: float | None) -> float | None:
    return None if radians is None else math.degrees(radians)


def _knn(knn: dict) -> list[str]:
    out = ["", "## kNN classification (cosine, majority of top-k)", ""]
    keys = ("folder", "k", "classes", "train_images", "val_images", "accuracy")
    return out + markdown_table(
        ["folder", "k", "classes", "train", "val", "accuracy"], [[knn[key] for key in keys]]
    )


def markdown(report: dict) -> str:
    """report.md: the model, the data and one table per metric family."""
    out = _summary(report)
    out += _same_class(report["same_class"])
    out += _hierarchical(report["hierarchical"], report["chance_precision"])
    out += _pr_curves(report["pr_curves"])
    out += _clustering(report["clustering"])
    out += _radial(report["radial"])
    if report.get("knn"):
        out += _knn(report["knn"])
    if RETRIEVAL_GRID_PNG in report.get("plots", []):
        out += [
            "",
            "## Retrieval grid (parent → child, sorted by embedding radius)",
            "",
            f"![grid]({plot_name(RETRIEVAL_GRID_PNG)})",
            "",
        ]
    return "\n".join(out)
