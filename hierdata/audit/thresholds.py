"""Threshold sensitivity: label pairs, tree edges and training pairs that survive each point of a
min_pair_frequency x min_pair_proportion grid, computed from the label_pairs statistics alone.
"""

import numpy as np
import polars as pl

from hierdata import trees
from hierdata.stats import is_accepted

# Grid steps around the chosen thresholds (powers of two): wide enough to show the trend,
# small enough that the loosest point does not accept every pair (tree rebuilds grow with it).
FREQUENCY_STEPS = (-3, -2, -1, 0, 1, 2, 3, 4)
PROPORTION_STEPS = (-3, -2, -1, 0, 1, 2, 3)
# Above this many accepted pairs a grid point's tree is not rebuilt (its edge count is null):
# breaking cycles costs one path search per edge.
MAX_TREE_PAIRS = 20_000


def frequency_grid(chosen: int) -> list[int]:
    """Ascending integer frequencies chosen * 2**k (k in FREQUENCY_STEPS), chosen included."""
    if chosen < 1:
        return [0, 1, 2, 5, 10, 20, 50, 100]
    return sorted({max(1, round(chosen * 2.0**k)) for k in FREQUENCY_STEPS} | {chosen})


def proportion_grid(chosen: float) -> list[float]:
    """Ascending proportions chosen * 2**k within (0, 1], chosen included."""
    if chosen <= 0:
        return [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]
    grid = {round(chosen * 2.0**k, 6) for k in PROPORTION_STEPS}
    return sorted({p for p in grid if p <= 1.0} | {chosen})


def tree_edge_count(label_pairs: pl.DataFrame, accepted: np.ndarray) -> int:
    """Label -> label edges of the label tree built from the rows where `accepted` holds.

    The same rule as trees.label_tree (DESIGN "Label tree"): in trees.accepted_dag of those
    rows (mutual pairs keep the stronger, cycles lose their weakest edge) every label with a
    parent left keeps exactly one edge. Which parent it keeps does not change the count, so
    the parent rule (parents.choose_parent: an ancestor search per comparable parent) is
    skipped: over a whole grid of rebuilds it would dominate the report's time.
    """
    rows = label_pairs.filter(pl.Series(accepted)).with_columns(accepted=pl.lit(True))
    dag = trees.accepted_dag(rows.to_arrow())
    return sum(1 for label in dag if dag.in_degree(label))


def sensitivity(
    label_pairs: pl.DataFrame,
    candidate_counts: pl.DataFrame,
    image_box_pairs: int,
    min_frequency: int,
    min_proportion: float,
) -> dict:
    """Survivors over the threshold grid; rows are proportions, columns frequencies.

    Args:
        label_pairs: schemas.LABEL_PAIRS of the stats split (polars).
        candidate_counts: (parent_label, child_label, candidates): box_box candidates per
            label pair over every split, so training pairs can be counted for any threshold.
        image_box_pairs: image ⊃ box training pairs (they do not depend on the thresholds).
        min_frequency, min_proportion: the run's chosen thresholds (inclusive, as in mining).
    Returns:
        {"frequency": [...], "proportion": [...], "chosen": {"frequency", "proportion"},
         "label_pairs", "tree_edges", "training_pairs": [[n per frequency] per proportion]}.
        A pair survives when hierdata.stats.is_accepted holds at (f, p): frequency >= f,
        proportion >= p, not an is-a pair and not one object under two labels (the run's
        same_object column); tree_edges is null where more than MAX_TREE_PAIRS pairs survive.
    """
    frequencies = frequency_grid(min_frequency)
    proportions = proportion_grid(min_proportion)
    joined = label_pairs.join(candidate_counts, on=["parent_label", "child_label"], how="left")
    frequency = joined["frequency"].to_numpy()
    proportion = joined["proportion"].to_numpy()
    isa = joined["isa"].to_numpy()
    same_object = joined["same_object"].to_numpy()
    candidates = joined["candidates"].fill_null(0).to_numpy().astype(np.int64)
    surviving = {"label_pairs": [], "tree_edges": [], "training_pairs": []}
    for p in proportions:
        rows = {name: [] for name in surviving}
        for f in frequencies:
            accepted = is_accepted(frequency, proportion, isa, same_object, f, p)
            n_accepted = int(accepted.sum())
            rows["label_pairs"].append(n_accepted)
            rows["training_pairs"].append(image_box_pairs + int(candidates[accepted].sum()))
            rows["tree_edges"].append(
                tree_edge_count(joined, accepted) if n_accepted <= MAX_TREE_PAIRS else None
            )
        for name, values in rows.items():
            surviving[name].append(values)
    return {
        "frequency": frequencies,
        "proportion": proportions,
        "chosen": {"frequency": min_frequency, "proportion": min_proportion},
        "max_tree_pairs": MAX_TREE_PAIRS,
        **surviving,
    }


def candidate_counts(candidates: pl.LazyFrame) -> pl.LazyFrame:
    """box_box candidates per (parent_label, child_label) over all splits."""
    return (
        candidates.filter(pl.col("kind") == "box_box")
        .group_by("parent_label", "child_label")
        .agg(candidates=pl.len())
    )
