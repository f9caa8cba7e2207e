"""--compare: what changed between two runs: accepted label pairs and tree edges gained or lost,
and the change of every count (per stage and split, label pairs, tree size, options).
"""

import polars as pl

from hierdata.audit import stats, tree_stats
from hierdata.audit.galleries import shard_sizes
from hierdata.audit.sources import Run


def _accepted(label_pairs: pl.DataFrame) -> set[tuple[str, str]]:
    rows = label_pairs.filter(pl.col("accepted")).select("parent_label", "child_label")
    return set(rows.iter_rows())


def _named(pairs: set[tuple[str, str]], this: Run, other: Run) -> list[dict]:
    """[{parent, child, parent_name, child_name}] sorted by label ids."""

    def name(label: str) -> str:
        return this.names.get(label) or other.name(label)

    return [
        {"parent": parent, "child": child, "parent_name": name(parent), "child_name": name(child)}
        for parent, child in sorted(pairs)
    ]


def _changes(this: dict, other: dict) -> list[dict]:
    """Rows {key, this, other, change} for every numeric leaf of two nested dicts."""
    rows = []
    for key in sorted(set(this) | set(other)):
        mine, theirs = this.get(key), other.get(key)
        if isinstance(mine, dict) or isinstance(theirs, dict):
            for row in _changes(mine or {}, theirs or {}):
                rows.append(dict(row, key=f"{key}.{row['key']}"))
            continue
        numbers = [v for v in (mine, theirs) if isinstance(v, int | float)]
        if len(numbers) == 2 and not isinstance(mine, bool):
            rows.append({"key": key, "this": mine, "other": theirs, "change": mine - theirs})
        elif mine != theirs:
            rows.append({"key": key, "this": mine, "other": theirs, "change": None})
    return rows


def compare(this: Run, this_pairs: pl.DataFrame, this_counts: dict, other: Run) -> dict:
    """This run against another: "gained" means present here and not in the other run.

    Returns {"other": root, "label_pairs": {"gained", "lost"}, "tree_edges": {"gained",
    "lost"} (label -> label edges), "counts": [{key, this, other, change}] for the counts per
    stage and split, label-pair totals and tree size, and "options": the options that differ}.
    """
    other_pairs = stats.label_pair_frame(other)
    samples = {split: sum(n.values()) for split, n in shard_sizes(other).items()}
    other_counts = stats.split_counts(other, samples)
    totals = {}
    for name, run, pairs in (("this", this, this_pairs), ("other", other, other_pairs)):
        options = run.options
        summary = tree_stats.summary(run.tree)
        totals[name] = {
            "stages": this_counts if name == "this" else other_counts,
            "label_pairs": stats.label_pair_totals(
                pairs, options.get("min_pair_frequency", 0), options.get("min_pair_proportion", 0.0)
            ),
            "tree": {
                key: summary[key]
                for key in ("labels", "edges", "under_root", "max_depth", "leaves")
            },
        }
    this_accepted, other_accepted = _accepted(this_pairs), _accepted(other_pairs)
    this_edges = tree_stats.label_edges(this.tree)
    other_edges = tree_stats.label_edges(other.tree)
    return {
        "other": other.root,
        "label_pairs": {
            "gained": _named(this_accepted - other_accepted, this, other),
            "lost": _named(other_accepted - this_accepted, this, other),
        },
        "tree_edges": {
            "gained": _named(this_edges - other_edges, this, other),
            "lost": _named(other_edges - this_edges, this, other),
        },
        "counts": _changes(totals["this"], totals["other"]),
        "options": [row for row in _changes(this.options, other.options) if row["change"] != 0],
    }
