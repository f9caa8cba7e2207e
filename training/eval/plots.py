"""The evaluation's PNG plots: precision-recall curves, embedding radius by depth, and a
Fig. 4-style retrieval grid sorted by embedding radius.

Drawn on matplotlib's Agg canvas (no display, no pyplot state); the same numbers give the same
bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from training.data import read_samples
from training.eval.report import ARROWS, fmt
from training.eval.sections import GridCrop, GridRow

_DPI = 100


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No "Software" metadata: the same numbers give the same bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def pr_plot(curves: Sequence[dict], label_of=lambda c: c["score"]) -> bytes:
    """Precision vs recall, one panel per direction, one line per curve."""
    figure = Figure(figsize=(10, 4.2))
    for axes, direction in zip(figure.subplots(1, 2), ARROWS, strict=True):
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
            title=ARROWS[direction],
            xlabel="recall",
            ylabel="precision",
            xlim=(0, 1),
            ylim=(0, 1.02),
        )
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    return _png(figure)


def radius_plot(radial: dict) -> bytes:
    """Mean radius per label-tree depth (one line per crop set), and the radial entailment angle
    of entailment vs unrelated pairs for each root."""
    figure = Figure(figsize=(10, 3.8))
    left, right = figure.subplots(1, 2)
    for name in ("all_crops", "boxes_only"):
        rows = radial[name]["per_depth"]
        tau = fmt(radial[name]["kendall_tau"])
        left.plot([r["depth"] for r in rows], [r["mean_radius"] for r in rows], marker="o",
                  label=f"{name} τ={tau}")  # fmt: skip
    left.set(
        title="embedding radius by depth (0 = whole image)",
        xlabel="label-tree depth",
        ylabel="mean radius",
    )
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    probes = radial["entailment"]
    places = np.arange(len(probes))
    for offset, key, label in ((-0.2, "entailed_mean", "entailed"),
                               (0.2, "unrelated_mean", "unrelated")):  # fmt: skip
        degrees = [math.degrees(p[key]) if p[key] is not None else np.nan for p in probes]
        right.bar(places + offset, degrees, width=0.4, label=label)
    right.set_xticks(places, [f"{p['root']}\nAUC {fmt(p['auc'])}" for p in probes])
    right.set(title="ext(u − r, v − r) by root r", ylabel="mean angle (°)")
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def load_crop_images(crops: Sequence[GridCrop]) -> dict[tuple[str, str], Image.Image]:
    """Decoded crops {(image_id, key): RGB image}, reading only their shards."""
    wanted = {(c.image_id, c.key) for c in crops}
    images = {}
    for sample in read_samples(sorted({c.shard for c in crops})):
        for image_id, key in wanted:
            entry = f"{key}.jpg"
            if image_id == sample.image_id and entry in sample.jpegs:
                with Image.open(io.BytesIO(sample.jpegs[entry])) as image:
                    images[(image_id, key)] = image.convert("RGB")
    return images


def grid_plot(grid: list[GridRow]) -> bytes:
    """Fig. 4-style grid: each row a parent query, then its top crops by the primary score,
    ordered by embedding radius (small = general, left); green frame = correct (in down(I))."""
    images = load_crop_images([row.query for row in grid] + [i for row in grid for i in row.items])
    n_cols = 1 + max(len(row.items) for row in grid)
    figure = Figure(figsize=(1.6 * n_cols, 1.9 * len(grid)))
    axes = np.atleast_2d(figure.subplots(len(grid), n_cols, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    for r, row in enumerate(grid):
        query = row.query
        axes[r, 0].imshow(images[(query.image_id, query.key)])
        axes[r, 0].set_title(f"query\nr={query.radius:.2f}", fontsize=8)
        for c, item in enumerate(row.items, start=1):
            ax = axes[r, c]
            ax.imshow(images[(item.image_id, item.key)])
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            colour = "tab:green" if item.correct else "tab:red"
            for spine in ax.spines.values():
                spine.set(color=colour, linewidth=3)
            ax.set_title(f"{item.name[:14]}\nr={item.radius:.2f}", fontsize=8)
    figure.suptitle(
        "parent → child retrieval, items sorted by embedding radius (left: smallest)", fontsize=10
    )
    figure.tight_layout()
    return _png(figure)
