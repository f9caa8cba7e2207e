"""Beam adapter for the label-pair statistics: one sum of every bucket's counts, then the
label_pairs table, the accepted pairs (a side input of the finish stage) and the trees (label
graph, its closure, the display tree).

At most 600 labels, so the summed counts, the table and the trees are a few MB on one worker.
"""

from collections.abc import Mapping, Sequence

import apache_beam as beam
import pyarrow as pa

from hierdata import ground_truth, io, isa, stats, trees
from hierdata.outputs import stamp_run
from hierdata.stats import LabelPairCounts
from pipelines.config import MiningRules
from pipelines.tables import WriteTable
from schemas import OutputLayout

ACCEPTED = "accepted"  # the key of the accepted pairs among the outputs; the others are summaries


def _write_trees(
    label_pairs: pa.Table,
    counts: LabelPairCounts,
    names: Mapping[str, str],
    root: str,
    run_fingerprint: str | None = None,
) -> dict:
    """Write trees/: label_graph.json and label_tree.json (node-link), label_tree.parquet and
    label_closure.parquet, each stamped with the run's fingerprint (outputs.stamp_run); return
    run.json's "label_graph" and "label_tree" summaries."""
    graph = trees.label_graph(label_pairs, counts.labels, names)
    tree = trees.display_tree(graph)
    layout = OutputLayout(root)
    closure = ground_truth.label_closure(graph)
    io.write_json(layout.label_graph_json, stamp_run(trees.node_link_data(graph), run_fingerprint))
    io.write_parquet(layout.label_closure_parquet, stamp_run(closure, run_fingerprint))
    io.write_json(layout.label_tree_json, stamp_run(trees.node_link_data(tree), run_fingerprint))
    io.write_parquet(
        layout.label_tree_parquet, stamp_run(trees.label_tree_table(tree), run_fingerprint)
    )
    return {"label_graph": trees.graph_summary(graph), "label_tree": trees.tree_summary(tree)}


class LabelPairStatistics(beam.PTransform):
    """LabelPairCounts of every bucket -> {ACCEPTED: frozenset of accepted (P, C) pairs, and
    run.json's "label_pairs", "label_graph", "label_tree", "isa_guard", "official_hierarchy"
    summaries}, each a singleton.

    Writes tables/label_pairs and trees/. Counts are summed by one CombineGlobally: additive
    tables, combined on each worker before the shuffle, never a hot key.
    """

    def __init__(
        self,
        names: Mapping[str, str],
        hierarchy: Sequence[tuple[str, str, str]],
        hierarchy_url: str | None,
        rules: MiningRules,
        root: str,
        run_fingerprint: str | None = None,
    ):
        super().__init__()
        self._run_fingerprint = run_fingerprint
        self._names = names
        self._hierarchy = hierarchy
        self._hierarchy_url = hierarchy_url
        self._rules = rules
        self._root = root

    def expand(self, label_pair_counts):
        rules = self._rules
        thresholds = (rules.min_pair_frequency, rules.min_pair_proportion)
        isa_pairs = isa.isa_pairs(self._hierarchy) if rules.isa_guard else frozenset()
        counts = label_pair_counts | "Sum label pairs" >> beam.CombineGlobally(
            LabelPairCounts.merge
        )
        label_pairs = counts | "Label pairs" >> beam.Map(
            LabelPairCounts.to_label_pairs,
            self._names,
            *thresholds,
            rules.same_object_iou,
            isa_pairs,
        )
        (
            label_pairs
            | "Name label_pairs" >> beam.Map(lambda table: ("00000", table))
            | "Write label_pairs" >> WriteTable(self._root, "label_pairs")
        )
        tree_summaries = label_pairs | "Trees" >> beam.Map(
            _write_trees,
            beam.pvalue.AsSingleton(counts),
            self._names,
            self._root,
            self._run_fingerprint,
        )
        return {
            ACCEPTED: label_pairs | "Accepted pairs" >> beam.Map(stats.accepted_label_pairs),
            "label_pairs": label_pairs
            | "Summary" >> beam.Map(stats.label_pair_summary, *thresholds),
            "label_graph": tree_summaries | "Graph summary" >> beam.Map(lambda s: s["label_graph"]),
            "label_tree": tree_summaries | "Tree summary" >> beam.Map(lambda s: s["label_tree"]),
            "isa_guard": label_pairs
            | "Is-a guard"
            >> beam.Map(
                isa.guard_state,
                self._hierarchy_url,
                rules.isa_guard,
                len(isa_pairs),
                *thresholds,
            ),
            "official_hierarchy": label_pairs
            | "Official hierarchy"
            >> beam.Map(isa.label_pair_agreement, self._hierarchy, *thresholds),
        }
