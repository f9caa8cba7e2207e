"""The evaluation report: report.json (every number), report.md (markdown tables) and PNG
plots (PR curves, a Fig. 4-style retrieval grid sorted by embedding radius, radius by depth).

Plots are drawn on matplotlib's Agg canvas (no display, no pyplot state).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from hierdata.io import write_bytes, write_json
from training.data import read_samples
from training.eval.metrics import CHILD_TO_PARENT, PARENT_TO_CHILD, TOPK_ACCURACY_KS

_DPI = 100
_ARROW = {PARENT_TO_CHILD: "parent → child", CHILD_TO_PARENT: "child → parent"}


def clean(value):
    """JSON-safe copy: NaN and inf become None, numpy scalars and arrays plain Python."""
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


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def _find(rows: list[dict], **match) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def headline(report: dict, score: str | None = None) -> dict:
    """The few numbers a comparison table needs, for one score (default: the primary score).

    c2p/p2c top-k: same-class accuracy; hier P/R/OT: parent -> child at the first Top-K;
    PR area: parent -> child; AMI/purity: means over tree depths; tau: radius vs depth over
    all crops; knn: accuracy (None without --knn_folder).
    """
    score = score or report["model"]["primary_score"]
    c2p = _find(report["same_class"], direction=CHILD_TO_PARENT, score=score) or {}
    p2c = _find(report["same_class"], direction=PARENT_TO_CHILD, score=score) or {}
    hier = _find(report["hierarchical"], direction=PARENT_TO_CHILD, score=score) or {}
    curve = _find(report["pr_curves"], direction=PARENT_TO_CHILD, score=score) or {}
    clusters = report.get("clustering") or []

    def mean(key: str) -> float | None:
        return float(np.mean([c[key] for c in clusters])) if clusters else None

    knn = report.get("knn") or {}
    return {
        "score": score,
        "c2p_top5": c2p.get("top_5"),
        "c2p_top10": c2p.get("top_10"),
        "p2c_top5": p2c.get("top_5"),
        "p2c_top10": p2c.get("top_10"),
        "hier_k": hier.get("k"),
        "hier_precision": hier.get("precision"),
        "hier_recall": hier.get("recall"),
        "hier_ot": hier.get("ot"),
        "chance_precision": report["chance_precision"].get(PARENT_TO_CHILD),
        "pr_area": curve.get("area"),
        "ami": mean("ami"),
        "purity": mean("purity"),
        "kendall_tau": report["radial"]["all_crops"]["kendall_tau"],
        "knn": knn.get("accuracy"),
    }


def markdown(report: dict) -> str:
    """report.md: the model, the data and one table per metric family."""
    model, data, emb = report["model"], report["data"], report["embedding"]
    described = ", ".join(f"{k}={_fmt(v)}" for k, v in model.items() if k != "scores")
    out = [
        "# Evaluation report",
        "",
        f"Model: {described}",
        "",
        f"Data: {data['images']} images (parents), {data['children']} child crops "
        f"(box area {report['config']['min_child_area']}–{report['config']['max_child_area']}"
        f" of the image), {data['boxes']} boxes in all; {data['parent_queries']} parent and "
        f"{data['child_queries']} child queries (seed {report['config']['seed']}); "
        f"{data['labels_in_tree']} tree labels; "
        f"{data['boxes_with_labels_not_in_tree']} boxes with labels not in the tree.",
        "",
        f"Embeddings: {emb['crops']} crops × {emb['dim']} dims, cache "
        f"{'hit' if emb['cache_hit'] else 'miss'} ({emb['key'][:12]}).",
        "",
    ]
    ks = [k for k in TOPK_ACCURACY_KS if any(f"top_{k}" in r for r in report["same_class"])]
    out += [
        "## Same-class retrieval (Top-k accuracy)",
        "",
        "child → parent: a hit is an image holding a box of the child's label; "
        "parent → child: one query per (image, label of one of its child crops), a hit is "
        "a child crop of that label.",
        "",
    ]
    out += markdown_table(
        ["direction", "score", "queries", "candidates", *(f"top-{k}" for k in ks)],
        [
            [
                _ARROW[r["direction"]],
                r["score"],
                r["queries"],
                r["candidates"],
                *(r.get(f"top_{k}") for k in ks),
            ]
            for r in report["same_class"]
        ],
    )
    chance = ", ".join(f"{_ARROW[d]} {_fmt(v)}" for d, v in report["chance_precision"].items())
    out += [
        "",
        "## Hierarchical retrieval (ground truth: down(labels(I)))",
        "",
        "OT: 1-D Wasserstein distance in label bins (depth-first order, plus `others`); "
        f"parent → child only. Precision of a random ranking: {chance}.",
        "",
    ]
    out += markdown_table(
        ["direction", "score", "K", "count", "queries", "precision", "recall", "OT"],
        [
            [
                _ARROW[r["direction"]],
                r["score"],
                r["k"],
                r["count"],
                r["queries"],
                r["precision"],
                r["recall"],
                r["ot"],
            ]
            for r in report["hierarchical"]
        ],
    )
    out += [
        "",
        "## Precision-recall curves (area, step-wise)",
        "",
        "![PR](plots/pr_curves.png)",
        "",
    ]
    out += markdown_table(
        ["direction", "score", "area"],
        [[_ARROW[r["direction"]], r["score"], r["area"]] for r in report["pr_curves"]],
    )
    out += ["", "## Hierarchy clustering (Ward, cut at the labels of each depth)", ""]
    out += markdown_table(
        ["depth", "clusters", "items", "AMI", "purity", "HHOT"],
        [
            [r["depth"], r["clusters"], r["items"], r["ami"], r["purity"], r["hhot"]]
            for r in report["clustering"]
        ],
    )
    out += [
        "",
        "## Radial probe (radius vs label-tree depth; images at depth 0)",
        "",
        "![radius](plots/radius_by_depth.png)",
        "",
    ]
    for name, probe in report["radial"].items():
        out += [
            f"{name}: Kendall τ = {_fmt(probe['kendall_tau'])} (p = {_fmt(probe['p_value'], 4)})",
            "",
        ]
    out += markdown_table(
        ["depth", "items", "mean radius", "mean angle from root (°)"],
        [
            [r["depth"], r["items"], r["mean_radius"], math.degrees(r["mean_angle_from_root"])]
            for r in report["radial"]["all_crops"]["per_depth"]
        ],
    )
    if report.get("knn"):
        knn = report["knn"]
        out += ["", "## kNN classification (cosine, majority of top-k)", ""]
        out += markdown_table(
            ["folder", "k", "classes", "train", "val", "accuracy"],
            [
                [
                    knn["folder"],
                    knn["k"],
                    knn["classes"],
                    knn["train_images"],
                    knn["val_images"],
                    knn["accuracy"],
                ]
            ],
        )
    if "retrieval_grid.png" in report.get("plots", []):
        out += [
            "",
            "## Retrieval grid (parent → child, sorted by embedding radius)",
            "",
            "![grid](plots/retrieval_grid.png)",
            "",
        ]
    return "\n".join(out)


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No "Software" metadata: the same numbers give the same bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def pr_plot(curves: Sequence[dict], label_of=lambda c: c["score"]) -> bytes:
    """Precision vs recall, one panel per direction, one line per curve."""
    figure = Figure(figsize=(10, 4.2))
    for axes, direction in zip(figure.subplots(1, 2), _ARROW, strict=True):
        chance = None
        for curve in (c for c in curves if c["direction"] == direction):
            recall = np.array(curve["recall"], dtype=float)
            precision = np.array(curve["precision"], dtype=float)
            keep = np.isfinite(recall) & np.isfinite(precision)
            area = "–" if curve["area"] is None else f"{curve['area']:.3f}"
            axes.plot(recall[keep], precision[keep], label=f"{label_of(curve)} (area {area})")
            chance = curve["chance"]
        if chance is not None:
            axes.axhline(
                chance,
                color="grey",
                linestyle="--",
                linewidth=1,
                label=f"random pairs ({chance:.3f})",
            )
        axes.set(
            title=_ARROW[direction],
            xlabel="recall",
            ylabel="precision",
            xlim=(0, 1),
            ylim=(0, 1.02),
        )
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    return _png(figure)


def radius_plot(probes: dict[str, dict]) -> bytes:
    """Mean radius and mean angle from the root per label-tree depth, one line per probe."""
    figure = Figure(figsize=(10, 3.8))
    left, right = figure.subplots(1, 2)
    for name, probe in probes.items():
        rows = probe["per_depth"]
        depth = [r["depth"] for r in rows]
        tau = _fmt(probe["kendall_tau"])
        left.plot(depth, [r["mean_radius"] for r in rows], marker="o", label=f"{name} τ={tau}")
        right.plot(
            depth, [math.degrees(r["mean_angle_from_root"]) for r in rows], marker="o", label=name
        )
    left.set(
        title="embedding radius by depth (0 = whole image)",
        xlabel="label-tree depth",
        ylabel="mean radius",
    )
    right.set(
        title="exterior angle from the mean embedding",
        xlabel="label-tree depth",
        ylabel="mean angle (°)",
    )
    for axes in (left, right):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def load_crop_images(rows: Sequence[dict]) -> dict[tuple[str, str], Image.Image]:
    """Decoded crops {(image_id, key): RGB image} for CROPS rows, reading only their shards."""
    wanted = {(r["image_id"], r["key"]) for r in rows}
    images = {}
    for sample in read_samples(sorted({r["shard"] for r in rows})):
        for image_id, key in wanted:
            entry = f"{key}.jpg"
            if image_id == sample.image_id and entry in sample.jpegs:
                with Image.open(io.BytesIO(sample.jpegs[entry])) as image:
                    images[(image_id, key)] = image.convert("RGB")
    return images


def grid_plot(grid: list[dict]) -> bytes:
    """Fig. 4-style grid: each row a parent query, then its top crops by the primary score,
    ordered by embedding radius (small = general, left); green frame = correct (in down(I))."""
    images = load_crop_images(
        [row["query"] for row in grid] + [item for row in grid for item in row["items"]]
    )
    n_cols = 1 + max(len(row["items"]) for row in grid)
    figure = Figure(figsize=(1.6 * n_cols, 1.9 * len(grid)))
    axes = np.atleast_2d(figure.subplots(len(grid), n_cols, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    for r, row in enumerate(grid):
        query = row["query"]
        axes[r, 0].imshow(images[(query["image_id"], query["key"])])
        axes[r, 0].set_title(f"query\nr={query['radius']:.2f}", fontsize=8)
        for c, item in enumerate(row["items"], start=1):
            ax = axes[r, c]
            ax.imshow(images[(item["image_id"], item["key"])])
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            colour = "tab:green" if item["correct"] else "tab:red"
            for spine in ax.spines.values():
                spine.set(color=colour, linewidth=3)
            ax.set_title(f"{item['name'][:14]}\nr={item['radius']:.2f}", fontsize=8)
    figure.suptitle(
        "parent → child retrieval, items sorted by embedding radius (left: smallest)", fontsize=10
    )
    figure.tight_layout()
    return _png(figure)


def write_report(output: Path, report: dict, grid: list[dict]) -> dict:
    """OUTPUT/report.json, report.md and plots/{pr_curves,radius_by_depth,retrieval_grid}.png.

    Returns the report as written: JSON-safe (see clean), with the plot file names added.
    """
    report = clean(report)
    plots = {
        "pr_curves.png": pr_plot(report["pr_curves"]),
        "radius_by_depth.png": radius_plot(report["radial"]),
    }
    if grid:
        plots["retrieval_grid.png"] = grid_plot(grid)
    for name, png in plots.items():
        write_bytes(str(output / "plots" / name), png)
    report["plots"] = sorted(plots)
    write_json(str(output / "report.json"), report)
    write_bytes(str(output / "report.md"), (markdown(report) + "\n").encode())
    return report
