"""The evaluation ground truth (DESIGN "Ground truth"): down(L), the label L and every label
reachable from it in the label graph of accepted pairs, stored as the closure table.

A child crop of label y is a correct answer for a parent image I when y is in down(L) for one
of I's labels L; the same relation read backwards gives the child -> parent answers.
"""

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq

from hierdata import io
from schemas.tables import LABEL_CLOSURE


def label_closure(graph: nx.DiGraph) -> pa.Table:
    """The transitive and reflexive closure of a label graph (trees.label_graph) as a table.

    Args:
        graph: the acyclic label graph; node attr "name" gives display names (else the id).
    Returns:
        schemas.LABEL_CLOSURE sorted by (label, descendant): one row per label and each label
        reachable from it, the label itself included (distance 0); distance is the number of
        edges on a shortest path.
    """
    rows = []
    for label in sorted(graph.nodes):
        reach = nx.single_source_shortest_path_length(graph, label)
        for descendant in sorted(reach):
            rows.append(
                {
                    "label": label,
                    "descendant": descendant,
                    "label_name": graph.nodes[label].get("name", label),
                    "descendant_name": graph.nodes[descendant].get("name", descendant),
                    "distance": reach[descendant],
                }
            )
    return pa.Table.from_pylist(rows, schema=LABEL_CLOSURE)


def down_sets(closure: pa.Table) -> dict[str, frozenset[str]]:
    """down(L) for every label of a closure table (schemas.LABEL_CLOSURE rows; extra columns
    are ignored), L itself always included; labels sorted."""
    columns = closure.select(["label", "descendant"]).to_pydict()
    sets: dict[str, set[str]] = {}
    for label, descendant in zip(columns["label"], columns["descendant"], strict=True):
        sets.setdefault(label, {label}).add(descendant)
    return {label: frozenset(sets[label]) for label in sorted(sets)}


def read_closure(url: str) -> pa.Table:
    """A stored label_closure.parquet (local path or fsspec URL) as schemas.LABEL_CLOSURE.

    Raises InputError when it is missing, pyarrow.ArrowInvalid (a ValueError) or KeyError when
    it is not a closure table.
    """
    table = pq.read_table(pa.BufferReader(io.read_bytes(url)))
    return table.select(LABEL_CLOSURE.names).cast(LABEL_CLOSURE)
