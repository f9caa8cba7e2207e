"""The label tree as a run stores it: every label named from the class descriptions, and the
summary run.json gives of it. (trees.label_tree derives the tree itself.)
"""

from collections.abc import Mapping

import networkx as nx
import pyarrow as pa

from hierdata import trees


def named_label_tree(
    label_pairs: pa.Table, label_counts: pa.Table, names: Mapping[str, str]
) -> nx.DiGraph:
    """trees.label_tree with each label's display name taken from the class descriptions.

    Args:
        label_pairs: schemas.LABEL_PAIRS of the run.
        label_counts: schemas.LABEL_COUNTS of the stats splits: every label in it is a node.
        names: label id -> display name; a label missing from it keeps the tree's own name
            (from label_pairs, else its id). The root keeps its name.
    Returns:
        The tree, as trees.label_tree describes it.
    """
    tree = trees.label_tree(label_pairs, label_counts)
    for label, attrs in tree.nodes(data=True):
        if label != trees.ROOT:
            attrs["name"] = names.get(label, attrs.get("name", label))
    return tree


def tree_summary(tree: nx.DiGraph) -> dict[str, int]:
    """run.json's "label_tree": labels (ROOT not counted), edges, deepest depth, labels under
    the root."""
    depths = [depth for _, depth in tree.nodes(data="depth")]
    return {
        "labels": tree.number_of_nodes() - 1,
        "edges": tree.number_of_edges(),
        "max_depth": max(depths, default=0),
        "under_root": tree.out_degree(trees.ROOT) if trees.ROOT in tree else 0,
    }
