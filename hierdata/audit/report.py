"""Builds OUTPUT/report/: index.html, the PNG plots, gallery crops, label_pairs.csv, stats.json.

Every file goes through hierdata.io, so the same code writes a local folder or gs://; the names
are schemas.report_layout's.
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from hierdata import io, isa, runinfo
from hierdata.audit import (
    compare,
    galleries,
    hierarchy_sections,
    page,
    plots,
    sections,
    sources,
    stats,
    thresholds,
    tree_stats,
)
from schemas.layout import RUN_JSON
from schemas.report_layout import (
    INDEX_HTML,
    LABEL_PAIRS_CSV,
    STATS_JSON,
    ReportLayout,
    plot_name,
)

LOG = logging.getLogger("hierdata.audit")
HIERARCHY_CLASSES = (
    "hierarchy_classes: for each image, the number of distinct labels in the union of down(L) "
    "over its kept labels L, down(L) being L and all its descendants in the label graph (the "
    "closure of the accepted label pairs, trees/label_closure.parquet); these "
    'are the classes that count as correct answers for the image (DESIGN "Ground truth"). '
    f"The paper reports {sections.PAPER_CLASSES_PER_IMAGE} distinct classes per image and "
    f"{sections.PAPER_HIERARCHY_CLASSES_PER_IMAGE} classes across each image's hierarchy trees "
    "on its Open Images data; its trees come from its own thresholds, so expect the same order "
    "of magnitude on full Open Images, not the same value. classes: distinct labels of the "
    "image's kept boxes; boxes: validated boxes, kept_boxes: those mining used."
)


class _Timer:
    """Seconds per report stage, logged at DEBUG and kept for stats.json (stderr is kept for
    warnings and the one error line)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._last, 3)
        LOG.debug("audit: %s %.2f s", stage, now - self._last)
        self._last = now


def _official(
    run: sources.Run, label_pairs: pl.DataFrame, min_frequency: int, min_proportion: float
) -> dict | None:
    """Agreement with the input's official hierarchy: run.json's, else recomputed from the
    hierarchy file named in the options; None when the input has no hierarchy."""
    agreement = run.record.get("official_hierarchy")
    if isinstance(agreement, dict):
        agreement = dict(agreement, source=RUN_JSON)
    elif run.hierarchy is not None:
        accepted = set(
            label_pairs.filter(pl.col("accepted")).select("parent_label", "child_label").iter_rows()
        )
        passing = stats.thresholds_passed(label_pairs, min_frequency, min_proportion)
        blocked = label_pairs.filter(pl.col("isa") & pl.Series(passing))
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
        "error",
        "images",
        "fingerprint",
    )
    return {key: record.get(key) for key in keys} | {"isa_guard": isa_guard(record)}


def isa_guard(record: dict) -> dict:
    """run.json's "isa_guard"; for runs from before it was recorded, the state the resolved
    --isa_guard option gives, with no reason known."""
    recorded = record.get("isa_guard")
    if isinstance(recorded, dict):
        return recorded
    if record.get("options", {}).get("isa_guard"):
        return {"state": "on", "hierarchy": record["options"].get("hierarchy")}
    return {"state": "off", "reason": "not recorded by this run"}


def _page(stats_json: dict, label_pairs: pl.DataFrame, tree_markup: str) -> str:
    # The headline (warnings included) first, then what the run found (tree, pairs, crops),
    # then the long tables: rejects with examples, inputs and the resolved options.
    parts = [
        ("summary", "Run summary", sections.summary(stats_json)),
        ("tree", "Label tree", hierarchy_sections.tree(stats_json, tree_markup)),
        ("label-pairs", "Label pairs", hierarchy_sections.label_pairs(stats_json, label_pairs)),
        ("thresholds", "Threshold sensitivity", hierarchy_sections.thresholds(stats_json)),
        ("galleries", "Crop galleries", sections.galleries(stats_json)),
        ("official", "Official hierarchy", hierarchy_sections.official(stats_json)),
        ("counts", "Counts per stage and split", sections.counts(stats_json)),
        ("per-image", "Per-image statistics", sections.per_image(stats_json)),
        ("rejects", "Rejected rows", sections.rejects(stats_json)),
        ("images", "Missing or corrupt images", sections.missing_images(stats_json)),
    ]
    if stats_json["compare"] is not None:
        parts.append(
            ("compare", "Compared with another run", hierarchy_sections.compare(stats_json))
        )
    parts.append(("run-details", "Run details", sections.run_details(stats_json)))
    return page.document("HierOpenImages audit", stats_json["output"], parts)


@dataclass
class _Measured:
    """Everything the report shows, before it becomes stats.json, plots and HTML."""

    counts: dict
    rejects: dict
    label_pairs: pl.DataFrame
    grid: dict
    image_summary: dict
    histograms: dict
    frequency: dict
    tree_summary: dict
    tree_markup: str
    gallery: dict
    comparison: dict | None


def _measure(
    run: sources.Run,
    other: sources.Run | None,
    thresholds_chosen: tuple[int, float],
    write: Callable[[str, bytes], None],
    timer: _Timer,
) -> _Measured:
    """Compute every statistic of the run (and the comparison), one timed stage after another;
    the gallery crops are written on the way."""
    sizes = galleries.shard_sizes(run)
    counts = stats.split_counts(run, {split: sum(n.values()) for split, n in sizes.items()})
    rejects = stats.rejects_summary(run)
    label_pairs = stats.label_pair_frame(run)
    timer.lap("counts")
    candidates = thresholds.candidate_counts(run.scan("candidates")).collect()
    image_box_pairs = sum(counts["image_box_pairs"].values())
    grid = thresholds.sensitivity(label_pairs, candidates, image_box_pairs, *thresholds_chosen)
    timer.lap("thresholds")
    image_summary, histograms = stats.per_image(run)
    frequency = stats.class_frequency(run)
    timer.lap("per_image")
    tree_summary = tree_stats.summary(run.tree)
    tree_summary["graph_edges"] = run.graph.number_of_edges()
    tree_summary["closure_pairs"] = run.closure.num_rows
    tree_summary["multi_parent"] = tree_stats.multi_parent(run.graph, run.tree, run.names)
    tree_markup = tree_stats.tree_html(run.tree, run.names)
    timer.lap("tree")
    gallery = galleries.build(run, label_pairs, sizes, write)
    timer.lap("galleries")
    comparison = compare.compare(run, label_pairs, counts, other) if other is not None else None
    timer.lap("compare")
    return _Measured(
        counts=counts,
        rejects=rejects,
        label_pairs=label_pairs,
        grid=grid,
        image_summary=image_summary,
        histograms=histograms,
        frequency=frequency,
        tree_summary=tree_summary,
        tree_markup=tree_markup,
        gallery=gallery,
        comparison=comparison,
    )


def _write_plots(
    run: sources.Run, measured: _Measured, write: Callable[[str, bytes], None]
) -> dict[str, str]:
    """Draw and write every plot; returns {plot: its report-relative PNG name}."""
    figures: dict[str, Callable[[], bytes]] = {
        "thresholds": lambda: plots.sensitivity_heatmaps(measured.grid),
        "tree_top": lambda: plots.tree_top_levels(tree_stats.top_levels(run.tree)),
        "tree_distributions": lambda: plots.tree_distributions(measured.tree_summary),
        "per_image": lambda: plots.per_image_histograms(
            measured.histograms, measured.image_summary["all"]
        ),
        "class_frequency": lambda: plots.class_frequency(measured.frequency["top"]),
    }
    plot_paths = {}
    for name, draw in figures.items():
        plot_paths[name] = plot_name(name)
        write(plot_paths[name], draw())
    return plot_paths


def _stats_json(
    root: str,
    run: sources.Run,
    measured: _Measured,
    thresholds_chosen: tuple[int, float],
    plot_paths: dict[str, str],
) -> dict:
    """stats.json's content (timings are added once the page is written)."""
    return {
        "output": root,
        "generated_at": runinfo.now(),
        "run": _run_summary(run.record),
        "counts": measured.counts,
        "run_json_mismatches": stats.record_mismatches(
            measured.counts, run.record.get("counts", {})
        ),
        "rejects": measured.rejects,
        "label_pairs": stats.label_pair_totals(measured.label_pairs, *thresholds_chosen),
        "thresholds": measured.grid,
        "tree": measured.tree_summary,
        "per_image": {
            "by_split": measured.image_summary,
            "histograms": measured.histograms,
            "definition": HIERARCHY_CLASSES,
            "paper": {
                "classes_per_image": sections.PAPER_CLASSES_PER_IMAGE,
                "hierarchy_classes_per_image": sections.PAPER_HIERARCHY_CLASSES_PER_IMAGE,
            },
        },
        "class_frequency": measured.frequency,
        "gallery": measured.gallery,
        "official_hierarchy": _official(run, measured.label_pairs, *thresholds_chosen),
        "compare": measured.comparison,
        "plots": plot_paths,
    }


def build_report(root: str, compare_root: str | None = None, out: str | None = None) -> dict:
    """Write root/report/ (or `out`) for one pipeline output and return what stats.json holds.

    Args:
        root: a pipeline output (local path or fsspec URL) with run.json and tables/.
        compare_root: another output to compare with (--compare), or None.
        out: the report folder (local path or fsspec URL); None: root/report. Nothing is
            written under root when it is given, so a read-only output can be audited.
    Returns:
        The stats.json content. Raises InputError when root (or compare_root) has no run.json.
    """
    timer = _Timer()
    run = sources.open_run(root)
    other = sources.open_run(compare_root) if compare_root else None
    report = ReportLayout(out or run.layout.report_dir)
    io.remove_tree(report.root)  # a rerun must not keep the previous run's gallery crops

    def write(name: str, data: bytes) -> None:
        io.write_bytes(report.url(name), data)

    options = run.options
    chosen = (
        int(options.get("min_pair_frequency", 50)),
        float(options.get("min_pair_proportion", 0.1)),
    )
    timer.lap("open")
    measured = _measure(run, other, chosen, write, timer)
    plot_paths = _write_plots(run, measured, write)
    timer.lap("plots")
    stats_json = _stats_json(root, run, measured, chosen, plot_paths)
    write(LABEL_PAIRS_CSV, measured.label_pairs.write_csv().encode())
    write(INDEX_HTML, _page(stats_json, measured.label_pairs, measured.tree_markup).encode())
    timer.lap("html")
    stats_json["timings_seconds"] = timer.seconds
    write(
        STATS_JSON,
        (json.dumps(stats_json, indent=2, sort_keys=True, default=str) + "\n").encode(),
    )
    return stats_json
