"""Run statistics from the Parquet tables, computed lazily with polars: counts per stage and
split, rejects, label-pair totals, per-image statistics and class frequencies.
"""

from collections.abc import Iterable

import numpy as np
import polars as pl
import pyarrow as pa

from hierdata.audit.sources import Run
from hierdata.stats import passes_thresholds

IMAGE_REASON_PREFIX = "image_"  # image rejects (missing, corrupt, ...): "file" is the image URL
EXAMPLES_PER_REASON = 3
TOP_CLASSES = 50
PER_IMAGE = ("boxes", "kept_boxes", "classes", "hierarchy_classes")
_IMAGE = ["split", "image_id"]
# Stages in pipeline order; the names match run.json "counts" where the pipeline counts them.
STAGES = (
    "lines", "rejects", "boxes", "kept_boxes", "images", "images_with_kept_boxes",
    "candidate_pairs", "accepted_pairs", "image_box_pairs", "cross_image_pairs",
    "samples", "image_rejects",
)  # fmt: skip


def split_order(splits: Iterable[str]) -> list[str]:
    """train, validation, test first (pipeline order), then any other split by name."""
    known = ("train", "validation", "test")
    return sorted(splits, key=lambda s: (known.index(s) if s in known else len(known), s))


def _is_image_reject() -> pl.Expr:
    return pl.col("reason").str.starts_with(IMAGE_REASON_PREFIX)


def _per_split(frame: pl.LazyFrame, **aggregates: pl.Expr) -> pl.LazyFrame:
    return frame.group_by("split").agg(**aggregates)


def split_counts(run: Run, shard_samples: dict[str, int]) -> dict[str, dict[str, int]]:
    """{stage: {split: n}} for STAGES, from the tables (and sizes.json for "samples").

    lines = boxes + rejected input rows (every input row ends up as one or the other);
    rejects counts input rows only, image_rejects the images that could not be decoded;
    accepted_pairs are the box_box training pairs, candidate_pairs every box_box candidate.
    """
    boxes = run.scan("boxes").select("split", "image_id", "kept")
    rejects = run.scan("rejects").select("split", "reason")
    pairs = run.scan("pairs").select("split", "kind")
    frames = [
        _per_split(
            boxes,
            boxes=pl.len(),
            kept_boxes=pl.col("kept").sum(),
            images=pl.col("image_id").n_unique(),
            images_with_kept_boxes=pl.col("image_id").filter(pl.col("kept")).n_unique(),
        ),
        _per_split(
            rejects, rejects=(~_is_image_reject()).sum(), image_rejects=_is_image_reject().sum()
        ),
        _per_split(run.scan("candidates").select("split"), candidate_pairs=pl.len()),
        _per_split(
            pairs,
            accepted_pairs=(pl.col("kind") == "box_box").sum(),
            image_box_pairs=(pl.col("kind") == "image_box").sum(),
        ),
        _per_split(run.scan("cross_pairs").select("split"), cross_image_pairs=pl.len()),
    ]
    counts: dict[str, dict[str, int]] = {stage: {} for stage in STAGES}
    for frame in pl.collect_all(frames):
        for row in frame.filter(pl.col("split").is_not_null()).iter_rows(named=True):
            for stage, value in row.items():
                if stage != "split":
                    counts[stage][row["split"]] = int(value or 0)
    splits = split_order(set().union(*counts.values()) | set(shard_samples))
    for split in splits:
        for stage in STAGES:
            counts[stage].setdefault(split, 0)
        counts["lines"][split] = counts["boxes"][split] + counts["rejects"][split]
        counts["samples"][split] = shard_samples.get(split, 0)
    return {
        stage: {split: per_split[split] for split in splits} for stage, per_split in counts.items()
    }


def record_mismatches(counts: dict, record_counts: dict) -> list[dict]:
    """Stages and splits where run.json's counters disagree with the tables (should be none)."""
    found = []
    for stage, per_split in counts.items():
        recorded = record_counts.get(stage)
        if stage in ("rejects", "samples") or not isinstance(recorded, dict):
            continue  # run.json nests rejects by reason; samples come from sizes.json
        for split, value in per_split.items():
            if split in recorded and int(recorded[split]) != value:
                found.append(
                    {
                        "stage": stage,
                        "split": split,
                        "tables": value,
                        "run_json": int(recorded[split]),
                    }
                )
    return found


def rejects_summary(run: Run) -> dict:
    """Rejected input rows and images: counts by reason and split, and example rows per reason.

    Returns {"rows": {...}, "images": {...}}, each with "total", "by_reason" {reason: n},
    "by_split" {split: {reason: n}} and "examples" {reason: [row, ...]} (the first
    EXAMPLES_PER_REASON rows by split, file and line).
    """
    rejects = run.scan("rejects")
    by_split = rejects.group_by("split", "reason").agg(n=pl.len()).sort("split", "reason")
    examples = (
        rejects.sort("reason", "split", "file", "line")
        .group_by("reason", maintain_order=True)
        .head(EXAMPLES_PER_REASON)
    )
    by_split, examples = pl.collect_all([by_split, examples])
    summary = {}
    for kind, images in (("rows", False), ("images", True)):
        mask = pl.col("reason").str.starts_with(IMAGE_REASON_PREFIX)
        mask = mask if images else ~mask
        counts = by_split.filter(mask)
        by_reason: dict[str, int] = {}
        per_split: dict[str, dict[str, int]] = {}
        for row in counts.iter_rows(named=True):
            by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["n"]
            per_split.setdefault(str(row["split"]), {})[row["reason"]] = row["n"]
        rows = examples.filter(mask).to_dicts()
        summary[kind] = {
            "total": sum(by_reason.values()),
            "by_reason": dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))),
            "by_split": per_split,
            "examples": {
                reason: [row for row in rows if row["reason"] == reason] for reason in by_reason
            },
        }
    return summary


def label_pair_frame(run: Run) -> pl.DataFrame:
    """The whole label_pairs table, sorted by accepted first, then frequency descending."""
    return (
        run.scan("label_pairs")
        .sort(
            ["accepted", "frequency", "parent_label", "child_label"],
            descending=[True, True, False, False],
        )
        .collect()
    )


def thresholds_passed(
    label_pairs: pl.DataFrame, min_frequency: float, min_proportion: float
) -> np.ndarray:
    """(N,) bool per label_pairs row: both thresholds hold (hierdata.stats.passes_thresholds),
    whether or not the pair is is-a."""
    frequency, proportion = label_pairs["frequency"], label_pairs["proportion"]
    return passes_thresholds(
        frequency.to_numpy(), proportion.to_numpy(), min_frequency, min_proportion
    )


def label_pair_totals(
    label_pairs: pl.DataFrame, min_frequency: float, min_proportion: float
) -> dict[str, int]:
    """Candidate, accepted, is-a and same-object label pairs; isa_blocked passed both thresholds
    but is-a; same_object_blocked passed both, is not is-a, and is one object under two labels
    (the same-object filter's work)."""
    passing = thresholds_passed(label_pairs, min_frequency, min_proportion)
    isa = label_pairs["isa"].to_numpy().astype(bool)
    same_object = label_pairs["same_object"].to_numpy().astype(bool)
    return {
        "candidate": label_pairs.height,
        "accepted": int(label_pairs["accepted"].sum() or 0),
        "isa": int(isa.sum()),
        "isa_blocked": int((passing & isa).sum()),
        "same_object": int(same_object.sum()),
        "same_object_blocked": int((passing & same_object & ~isa).sum()),
        "passing_thresholds": int(passing.sum()),
    }


def _down_frame(closure: pa.Table) -> pl.DataFrame:
    """(label, member) for every member of down(label): the closure of the label graph
    (DESIGN "Ground truth"), each label its own member."""
    frame = pl.from_arrow(closure.select(["label", "descendant"]))
    return frame.rename({"descendant": "member"})


def _summary(column: pl.Expr) -> list[pl.Expr]:
    name = column.meta.output_name()
    return [
        column.mean().alias(f"{name}_mean"),
        column.median().alias(f"{name}_median"),
        column.quantile(0.9).alias(f"{name}_p90"),
        column.max().alias(f"{name}_max"),
    ]


def per_image(run: Run) -> tuple[dict, dict[str, dict[int, int]]]:
    """Per-image statistics per split and over all splits.

    For every image with at least one validated box: boxes (validated), kept_boxes, classes
    (distinct labels of its kept boxes) and hierarchy_classes = |union of down(L) over the
    image's kept labels L|, down(L) read from the label graph's closure: the classes that count
    as correct answers for the image (DESIGN "Ground truth"), i.e. the labels across the
    image's hierarchy trees. A label missing from the closure counts as itself. Images without
    kept boxes have 0 classes.

    Returns:
        ({split | "all": {"images": n, "{stat}_mean"/"_median"/"_p90"/"_max": x}},
         {stat: {value: images}} histograms over all splits).
    """
    boxes = run.scan("boxes").select(*_IMAGE, "label", "kept")
    base = boxes.group_by(_IMAGE).agg(
        boxes=pl.len(),
        kept_boxes=pl.col("kept").sum(),
        classes=pl.col("label").filter(pl.col("kept")).n_unique(),
    )
    down = _down_frame(run.closure).lazy()
    labels = boxes.filter(pl.col("kept")).select(*_IMAGE, "label").unique()
    hierarchy = (
        labels.join(down, on="label", how="left")
        .with_columns(pl.col("member").fill_null(pl.col("label")))
        .group_by(_IMAGE)
        .agg(hierarchy_classes=pl.col("member").n_unique())
    )
    images = base.join(hierarchy, on=_IMAGE, how="left").with_columns(
        pl.col("hierarchy_classes").fill_null(0), pl.col("kept_boxes").cast(pl.Int64)
    )
    images = images.collect()
    aggregates = [pl.len().alias("images")]
    for stat in PER_IMAGE:
        aggregates += _summary(pl.col(stat))
    per_split = {
        row.pop("split"): row for row in images.group_by("split").agg(aggregates).to_dicts()
    }
    summary = {split: per_split[split] for split in split_order(per_split)}
    summary["all"] = images.select(aggregates).row(0, named=True)
    histograms = {}
    for stat in PER_IMAGE:
        counts = images.group_by(stat).agg(n=pl.len()).sort(stat)
        histograms[stat] = dict(zip(counts[stat].to_list(), counts["n"].to_list(), strict=True))
    return summary, histograms


def class_frequency(run: Run) -> dict:
    """Kept boxes per label over all splits: the TOP_CLASSES most frequent and the totals."""
    counts = (
        run.scan("boxes")
        .filter(pl.col("kept"))
        .group_by("label")
        .agg(boxes=pl.len())
        .sort(["boxes", "label"], descending=[True, False])
        .collect()
    )
    top = [
        {"label": label, "name": run.name(label), "boxes": int(n)}
        for label, n in counts.head(TOP_CLASSES).iter_rows()
    ]
    return {"labels": counts.height, "kept_boxes": int(counts["boxes"].sum() or 0), "top": top}
