"""Threshold sensitivity (hierdata.audit.thresholds): the acceptance rule (thresholds, is-a,
same object) and the label tree re-applied at every point of the grid."""

import numpy as np
import polars as pl
import pyarrow.compute as pc

from hierdata import outputs, trees
from hierdata.audit import thresholds, tree_stats


def frame(*rows: tuple) -> pl.DataFrame:
    """label_pairs columns the grid reads, from (parent, child, frequency, proportion, isa[,
    same_object]) rows."""
    names = ["parent_label", "child_label", "frequency", "proportion", "isa", "same_object"]
    records = [dict(zip(names, (*row, False)[:6], strict=True)) for row in rows]
    return pl.DataFrame(records).with_columns(accepted=pl.lit(True))


def test_tree_edge_count_is_one_edge_per_label_left_with_a_parent():
    pairs = frame(
        ("a", "b", 50, 0.6, False),
        ("b", "a", 50, 0.3, False),  # the weaker of a mutual pair: dropped
        ("b", "c", 50, 0.5, False),
        ("a", "c", 50, 0.4, False),  # c keeps one of its two parents
        ("x", "y", 50, 0.9, False),
        ("y", "z", 50, 0.8, False),
        ("z", "x", 50, 0.2, False),  # closes a 3-cycle: dropped as its weakest edge
    )
    everything = np.ones(pairs.height, dtype=bool)
    assert thresholds.tree_edge_count(pairs, everything) == 4  # b, c, y, z
    without_cycle_breaker = everything.copy()
    without_cycle_breaker[6] = False
    assert thresholds.tree_edge_count(pairs, without_cycle_breaker) == 4
    assert thresholds.tree_edge_count(pairs, ~everything) == 0


def test_sensitivity_applies_the_acceptance_rule_at_each_point():
    pairs = frame(
        ("car", "wheel", 10, 0.5, False),
        ("house", "bird", 100, 0.05, False),
        ("table", "desk", 100, 0.5, True),  # is-a: never survives, whatever the thresholds
        ("tire", "wheel", 100, 0.5, False, True),  # one object: never survives either
    )
    candidates = pl.DataFrame(
        {"parent_label": ["car", "house"], "child_label": ["wheel", "bird"], "candidates": [5, 7]}
    )
    grid = thresholds.sensitivity(pairs, candidates, 1000, 10, 0.1)
    assert grid["frequency"] == [1, 2, 5, 10, 20, 40, 80, 160]
    assert grid["proportion"] == [0.0125, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8]
    at = {
        (p, f): (grid["label_pairs"][i][j], grid["training_pairs"][i][j], grid["tree_edges"][i][j])
        for i, p in enumerate(grid["proportion"])
        for j, f in enumerate(grid["frequency"])
    }
    assert at[(0.1, 10)] == (1, 1005, 1)  # the run's own thresholds: car ⊃ wheel only
    assert at[(0.05, 10)] == (2, 1012, 2)  # both inclusive: proportion 0.05 >= 0.05
    assert at[(0.05, 20)] == (1, 1007, 1)
    assert at[(0.8, 1)] == (0, 1000, 0)


def test_label_pair_totals_and_chosen_threshold_cell(demo_output):
    """DESIGN "Label-pair statistics": the grid's chosen cell is the run itself."""
    out, stats = demo_output
    label_pairs = outputs.read_table(str(out), "label_pairs")
    pairs = outputs.read_table(str(out), "pairs")
    accepted = pc.sum(label_pairs["accepted"]).as_py()
    assert stats["label_pairs"]["accepted"] == accepted > 0
    assert stats["label_pairs"]["candidate"] == label_pairs.num_rows
    grid = stats["thresholds"]
    row = grid["proportion"].index(0.1)
    column = grid["frequency"].index(5)
    assert grid["label_pairs"][row][column] == accepted
    assert grid["training_pairs"][row][column] == pairs.num_rows
    run_tree = trees.label_tree(label_pairs)
    assert grid["tree_edges"][row][column] == len(tree_stats.label_edges(run_tree))
    # Looser thresholds never keep fewer pairs.
    survivors = np.array(grid["label_pairs"])
    assert (np.diff(survivors, axis=0) <= 0).all() and (np.diff(survivors, axis=1) <= 0).all()


def test_threshold_grid_rebuilds_the_label_tree_at_every_point(demo_output):
    """DESIGN "Label tree": each cell's edge count is trees.label_tree on the re-accepted table."""
    out, stats = demo_output
    label_pairs = outputs.read_table(str(out), "label_pairs")
    grid = stats["thresholds"]
    for row, proportion in enumerate(grid["proportion"]):
        for column, frequency in enumerate(grid["frequency"]):
            accepted = pc.and_(
                pc.and_(
                    pc.greater_equal(label_pairs["frequency"], frequency),
                    pc.greater_equal(label_pairs["proportion"], proportion),
                ),
                pc.invert(pc.or_(label_pairs["isa"], label_pairs["same_object"])),
            )
            table = label_pairs.set_column(
                label_pairs.schema.get_field_index("accepted"), "accepted", accepted
            )
            edges = tree_stats.label_edges(trees.label_tree(table))
            assert grid["tree_edges"][row][column] == len(edges), (frequency, proportion)
