"""Beam adapter for the label-pair statistics: one sum of every bucket's counts, then the
label_pairs table, the accepted pairs (a side input of the finish stage) and the label tree.

At most 600 labels, so the summed counts, the table and the tree are a few MB on one worker.
"""

from collections.abc import Mapping, Sequence

import apache_beam as beam
import pyarrow as pa

from hierdata import io, isa, named_tree, stats, trees
from hierdata.stats import LabelPairCounts
from pipelines.config import MiningRules
from pipelines.tables import WriteTable
from schemas import OutputLayout

ACCEPTED = "accepted"  # the key of the accepted pairs among the outputs; the others are summaries


def _write_label_tree(
    label_pairs: pa.Table, counts: LabelPairCounts, names: Mapping[str, str], root: str
) -> dict:
    """Write trees/label_tree.json (node-link) and trees/label_tree.parquet; return the summary."""
    tree = named_tree.named_label_tree(label_pairs, counts.labels, names)
    layout = OutputLayout(root)
    io.write_json(layout.label_tree_json, trees.tree_node_link(tree))
    io.write_parquet(layout.label_tree_parquet, trees.label_tree_table(tree))
    return named_tree.tree_summary(tree)


class LabelPairStatistics(beam.PTransform):
    """LabelPairCounts of every bucket -> {ACCEPTED: frozenset of accepted (P, C) pairs, and
    run.json's "label_pairs", "label_tree", "official_hierarchy" summaries}, each a singleton.

    Writes tables/label_pairs and the label tree. Counts are summed by one CombineGlobally:
    additive tables, combined on each worker before the shuffle, never a hot key.
    """

    def __init__(
        self,
        names: Mapping[str, str],
        hierarchy: Sequence[tuple[str, str, str]],
        rules: MiningRules,
        root: str,
    ):
        super().__init__()
        self._names = names
        self._hierarchy = hierarchy
        self._rules = rules
        self._root = root

    def expand(self, label_pair_counts):
        rules = self._rules
        isa_pairs = isa.isa_pairs(self._hierarchy) if rules.isa_guard else frozenset()
        counts = label_pair_counts | "Sum label pairs" >> beam.CombineGlobally(
            LabelPairCounts.merge
        )
        label_pairs = counts | "Label pairs" >> beam.Map(
            LabelPairCounts.to_label_pairs,
            self._names,
            rules.min_pair_frequency,
            rules.min_pair_proportion,
            isa_pairs,
        )
        (
            label_pairs
            | "Name label_pairs" >> beam.Map(lambda table: ("00000", table))
            | "Write label_pairs" >> WriteTable(self._root, "label_pairs")
        )
        return {
            ACCEPTED: label_pairs | "Accepted pairs" >> beam.Map(stats.accepted_label_pairs),
            "label_pairs": label_pairs | "Summary" >> beam.Map(stats.label_pair_summary),
            "label_tree": label_pairs
            | "Label tree"
            >> beam.Map(
                _write_label_tree, beam.pvalue.AsSingleton(counts), self._names, self._root
            ),
            "official_hierarchy": label_pairs
            | "Official hierarchy"
            >> beam.Map(
                isa.label_pair_agreement,
                self._hierarchy,
                rules.min_pair_frequency,
                rules.min_pair_proportion,
            ),
        }
