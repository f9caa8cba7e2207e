"""Builds OUTPUT/report/: index.html, the PNG plots, gallery crops, label_pairs.csv, stats.json.

Every file goes through hierdata.io, so the same code writes a local folder or gs://.
"""

import json
import logging
import time
from collections.abc import Callable

import polars as pl

from hierdata import io, isa, runinfo
from hierdata.audit import (
    compare,
    galleries,
    page,
    plots,
    sections,
    sources,
    stats,
    thresholds,
    tree_stats,
)

LOG = logging.getLogger("hierdata.audit")
HIERARCHY_CLASSES = (
    "hierarchy_classes: for each image, the number of distinct labels in the union of down(L) "
    "over its kept labels L, down(L) being L and all its descendants in the label tree; these "
    'are the classes that count as correct answers for the image (DESIGN "Ground truth"). '
    f"The paper reports {sections.PAPER_CLASSES_PER_IMAGE} distinct classes per image and "
    f"{sections.PAPER_HIERARCHY_CLASSES_PER_IMAGE} classes across each image's hierarchy trees "
    "on its Open Images data; its trees come from its own thresholds, so expect the same order "
    "of magnitude on full Open Images, not the same value. classes: distinct labels of the "
    "image's kept boxes; boxes: validated boxes, kept_boxes: those mining used."
)


class _Timer:
    """Seconds per report stage, logged and kept for stats.json."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._last, 3)
        LOG.info("audit: %s %.2f s", stage, now - self._last)
        self._last = now


def _official(
    run: sources.Run, label_pairs: pl.DataFrame, min_frequency: int, min_proportion: float
) -> dict | None:
    """Agreement with the input's official hierarchy: run.json's, else recomputed from the
    hierarchy file named in the options; None when the input has no hierarchy."""
    agreement = run.record.get("official_hierarchy")
    if isinstance(agreement, dict):
        agreement = dict(agreement, source="run.json")
    elif run.hierarchy is not None:
        accepted = set(
            label_pairs.filter(pl.col("accepted")).select("parent_label", "child_label").iter_rows()
        )
        blocked = label_pairs.filter(
            pl.col("isa")
            & (pl.col("frequency") >= min_frequency)
            & (pl.col("proportion") >= min_proportion)
        )
        agreement = isa.official_part_agreement(
            accepted, run.hierarchy, set(blocked.select("parent_label", "child_label").iter_rows())
        )
        agreement["source"] = run.options.get("hierarchy")
    else:
        return None
    labels = {
        label
        for key in (
            "accepted_official_part",
            "accepted_new",
            "isa_blocked",
            "official_not_accepted",
        )
        for pair in agreement[key]
        for label in pair
    }
    agreement["names"] = {label: run.name(label) for label in sorted(labels)}
    return agreement


def _run_summary(record: dict) -> dict:
    keys = (
        "status",
        "runner",
        "started_at",
        "finished_at",
        "elapsed_seconds",
        "inputs",
        "options",
        "versions",
    )
    return {key: record.get(key) for key in keys}


def _page(stats_json: dict, label_pairs: pl.DataFrame, tree_markup: str) -> str:
    parts = [
        ("summary", "Run summary", sections.summary(stats_json)),
        ("counts", "Counts per stage and split", sections.counts(stats_json)),
        ("rejects", "Rejected rows", sections.rejects(stats_json)),
        ("images", "Missing or corrupt images", sections.missing_images(stats_json)),
        ("label-pairs", "Label pairs", sections.label_pairs(stats_json, label_pairs)),
        ("thresholds", "Threshold sensitivity", sections.thresholds(stats_json)),
        ("tree", "Label tree", sections.tree(stats_json, tree_markup)),
        ("per-image", "Per-image statistics", sections.per_image(stats_json)),
        ("galleries", "Crop galleries", sections.galleries(stats_json)),
        ("official", "Official hierarchy", sections.official(stats_json)),
    ]
    if stats_json["compare"] is not None:
        parts.append(("compare", "Compared with another run", sections.compare(stats_json)))
    return page.document("HierOpenImages audit", stats_json["output"], parts)


def build_report(root: str, compare_root: str | None = None) -> dict:
    """Write root/report/ for one pipeline output and return what stats.json holds.

    Args:
        root: a pipeline output (local path or fsspec URL) with run.json and tables/.
        compare_root: another output to compare with (--compare), or None.
    Returns:
        The stats.json content. Raises InputError when root (or compare_root) has no run.json.
    """
    timer = _Timer()
    run = sources.open_run(root)
    other = sources.open_run(compare_root) if compare_root else None
    report_dir = run.layout.report_dir
    io.remove_tree(report_dir)  # a rerun must not keep the previous run's gallery crops

    def write(relative: str, data: bytes) -> None:
        io.write_bytes(io.join(report_dir, relative), data)

    options = run.options
    min_frequency = int(options.get("min_pair_frequency", 50))
    min_proportion = float(options.get("min_pair_proportion", 0.1))
    timer.lap("open")
    sizes = galleries.shard_sizes(run)
    counts = stats.split_counts(run, {split: sum(n.values()) for split, n in sizes.items()})
    rejects = stats.rejects_summary(run)
    label_pairs = stats.label_pair_frame(run)
    timer.lap("counts")
    candidates = thresholds.candidate_counts(run.scan("candidates")).collect()
    grid = thresholds.sensitivity(
        label_pairs,
        candidates,
        sum(counts["image_box_pairs"].values()),
        min_frequency,
        min_proportion,
    )
    timer.lap("thresholds")
    image_summary, histograms = stats.per_image(run)
    frequency = stats.class_frequency(run)
    timer.lap("per_image")
    tree_summary = tree_stats.summary(run.tree)
    tree_summary["multi_parent"] = tree_stats.multi_parent(label_pairs, run.tree, run.names)
    tree_markup = tree_stats.tree_html(run.tree, run.names)
    timer.lap("tree")
    gallery = galleries.build(run, label_pairs, sizes, write)
    timer.lap("galleries")
    comparison = compare.compare(run, label_pairs, counts, other) if other is not None else None
    timer.lap("compare")

    figures: dict[str, Callable[[], bytes]] = {
        "thresholds": lambda: plots.sensitivity_heatmaps(grid),
        "tree_top": lambda: plots.tree_top_levels(tree_stats.top_levels(run.tree)),
        "tree_distributions": lambda: plots.tree_distributions(tree_summary),
        "per_image": lambda: plots.per_image_histograms(histograms, image_summary["all"]),
        "class_frequency": lambda: plots.class_frequency(frequency["top"]),
    }
    plot_paths = {}
    for name, draw in figures.items():
        plot_paths[name] = f"plots/{name}.png"
        write(plot_paths[name], draw())
    timer.lap("plots")

    stats_json = {
        "output": root,
        "generated_at": runinfo.now(),
        "run": _run_summary(run.record),
        "counts": counts,
        "run_json_mismatches": stats.record_mismatches(counts, run.record.get("counts", {})),
        "rejects": rejects,
        "label_pairs": stats.label_pair_totals(label_pairs, min_frequency, min_proportion),
        "thresholds": grid,
        "tree": tree_summary,
        "per_image": {
            "by_split": image_summary,
            "histograms": histograms,
            "definition": HIERARCHY_CLASSES,
            "paper": {
                "classes_per_image": sections.PAPER_CLASSES_PER_IMAGE,
                "hierarchy_classes_per_image": sections.PAPER_HIERARCHY_CLASSES_PER_IMAGE,
            },
        },
        "class_frequency": frequency,
        "gallery": gallery,
        "official_hierarchy": _official(run, label_pairs, min_frequency, min_proportion),
        "compare": comparison,
        "plots": plot_paths,
    }
    write("label_pairs.csv", label_pairs.write_csv().encode())
    write("index.html", _page(stats_json, label_pairs, tree_markup).encode())
    timer.lap("html")
    stats_json["timings_seconds"] = timer.seconds
    write(
        "stats.json",
        (json.dumps(stats_json, indent=2, sort_keys=True, default=str) + "\n").encode(),
    )
    return stats_json
