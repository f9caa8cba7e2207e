"""Hierarchy trees: the label graph of the accepted pairs, the display label tree, and each
image's tree of boxes; their node-link JSON form and run.json summaries.

The evaluation ground truth is the closure of the label graph (hierdata.ground_truth), not of
the display tree.
"""

from collections.abc import Mapping

import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hierdata import parents
from schemas.tables import IMAGE_TREES, LABEL_TREE

ROOT = "scene"  # the virtual root: the whole image, parent of every label without a parent
_IMAGE_PARENT = -1  # parent_box of a box whose parent is the whole image
_IMAGE_KEY = ["split", "image_id"]
# schemas.LABEL_PAIRS columns each label-graph edge carries.
EDGE_STATISTICS = (
    "frequency",
    "proportion",
    "parents_with_child",
    "parent_boxes",
    "children_with_parent",
    "child_boxes",
    "iou_median",
    "near_duplicate_share",
)
_TREE_EDGE = ("frequency", "proportion")  # what a display-tree edge keeps of them


def _weakness(parent: str, child: str, attrs: Mapping) -> tuple:
    """Sort key, strongest edge first: higher proportion, then higher frequency, then the
    (parent, child) label ids in ascending order, so that a full tie has one answer."""
    return (-attrs["proportion"], -attrs["frequency"], parent, child)


def _accepted_graph(label_pairs: pa.Table) -> nx.DiGraph:
    """Parent -> child graph of the accepted rows; edge attrs: the EDGE_STATISTICS columns the
    table has (frequency and proportion at least: the cycle rules read them)."""
    accepted = label_pairs.filter(label_pairs.column("accepted"))
    statistics = [name for name in EDGE_STATISTICS if name in label_pairs.column_names]
    rows = accepted.select(["parent_label", "child_label", *statistics]).to_pylist()
    graph = nx.DiGraph()
    for row in rows:
        edge = (row.pop("parent_label"), row.pop("child_label"))
        if edge in graph.edges:
            raise ValueError(f"label_pairs holds the accepted pair {edge} twice")
        graph.add_edge(*edge, **row)
    return graph


def _drop_weaker_of_mutual_pairs(graph: nx.DiGraph) -> None:
    """When both P -> C and C -> P are accepted, keep only the stronger (see _weakness)."""
    mutual = [(p, c) for p, c in graph.edges if p < c and graph.has_edge(c, p)]
    for p, c in mutual:
        weaker = max((p, c), (c, p), key=lambda edge: _weakness(*edge, graph.edges[edge]))
        graph.remove_edge(*weaker)


def _break_cycles(graph: nx.DiGraph) -> nx.DiGraph:
    """The acyclic graph left after dropping, for every cycle, its weakest edge.

    Edges are added strongest first; an edge that would close a cycle is the weakest edge of
    that cycle (all others were added before it) and is dropped. Unlike removing the weakest
    edge of whichever cycle a search finds first, the result does not depend on search order,
    and an edge is never dropped for a cycle that a weaker edge already broke.
    """
    dag = nx.DiGraph()
    dag.add_nodes_from(sorted(graph.nodes))
    for parent, child in sorted(graph.edges, key=lambda edge: _weakness(*edge, graph.edges[edge])):
        if not nx.has_path(dag, child, parent):
            dag.add_edge(parent, child, **graph.edges[parent, child])
    return dag


def _label_counts(label_counts: Mapping[str, int] | pa.Table | None) -> dict[str, int]:
    """Kept boxes per label from a mapping or schemas.LABEL_COUNTS rows (summed per label)."""
    if label_counts is None:
        return {}
    if isinstance(label_counts, pa.Table):
        summed = label_counts.group_by("label").aggregate([("kept_boxes", "sum")])
        labels, counts = summed.column("label"), summed.column("kept_boxes_sum")
        return dict(zip(labels.to_pylist(), counts.to_pylist(), strict=True))
    return {label: int(count) for label, count in label_counts.items()}


def _name_nodes(
    graph: nx.DiGraph,
    label_pairs: pa.Table,
    label_counts: Mapping[str, int] | pa.Table | None,
    names: Mapping[str, str] | None,
) -> None:
    """Add every label of label_counts as a node and give every node name and kept_boxes."""
    counts = _label_counts(label_counts)
    if ROOT in counts or ROOT in graph:
        raise ValueError(f"label id {ROOT!r} is reserved for the virtual root")
    graph.add_nodes_from(sorted(set(counts) - set(graph)))
    rows = label_pairs.select(
        ["parent_label", "child_label", "parent_name", "child_name", "parent_boxes"]
    ).to_pydict()
    found = dict(zip(rows["parent_label"], rows["parent_name"], strict=True))
    found.update(zip(rows["child_label"], rows["child_name"], strict=True))
    found.update(names or {})
    kept_boxes = dict(zip(rows["parent_label"], rows["parent_boxes"], strict=True)) | counts
    for label, attrs in graph.nodes(data=True):
        attrs["name"] = found.get(label, label)
        attrs["kept_boxes"] = kept_boxes.get(label, 0)


def label_graph(
    label_pairs: pa.Table,
    label_counts: Mapping[str, int] | pa.Table | None = None,
    names: Mapping[str, str] | None = None,
) -> nx.DiGraph:
    """DESIGN "Label graph": the accepted pairs as a parent -> child DAG.

    Of two mutually accepted pairs P -> C and C -> P only the stronger stays; every remaining
    cycle then loses its weakest edge (_break_cycles). "Stronger" means higher proportion,
    then higher frequency, then the (parent, child) pair of label ids that sorts first.

    Args:
        label_pairs: schemas.LABEL_PAIRS; only rows with accepted == True make edges.
        label_counts: kept boxes per label: a mapping, or schemas.LABEL_COUNTS rows (summed per
            label). Every label in it becomes a node, so that the graph (and its closure, the
            ground truth) covers every label of the data. Without it only the labels of
            accepted pairs are nodes.
        names: label id -> display name (the class descriptions); a label missing from it is
            named from label_pairs, else by its id.
    Returns:
        An acyclic DiGraph. Node attrs: name, kept_boxes (from label_counts, else label_pairs'
        parent_boxes, else 0). Edge attrs (parent -> child): EDGE_STATISTICS of the pair.
        Raises ValueError when an accepted pair appears twice or a label is ROOT.
    """
    dag = accepted_dag(label_pairs)
    _name_nodes(dag, label_pairs, label_counts, names)
    return dag


def accepted_dag(label_pairs: pa.Table) -> nx.DiGraph:
    """label_graph's edges alone, nodes unnamed: what the audit's threshold grid rebuilds at
    each point (label_pairs needs only parent_label, child_label, frequency, proportion and
    accepted)."""
    graph = _accepted_graph(label_pairs)
    _drop_weaker_of_mutual_pairs(graph)
    return _break_cycles(graph)


def display_tree(graph: nx.DiGraph) -> nx.DiGraph:
    """The display label tree of DESIGN "Label tree", rooted at the virtual label ROOT.

    Every label of the label graph keeps one parent, chosen by parents.choose_parent: the
    parent whose boxes hold the most of the label's boxes, except that among parents whose
    share is statistically indistinguishable (95% Wilson intervals) an ancestor gives way to
    its descendant (see there for the exact rule). Labels without a parent hang from ROOT.

    Args:
        graph: a label_graph (acyclic; node attrs name and kept_boxes).
    Returns:
        A tree (DiGraph, edges parent -> child) with graph attr root = ROOT. Node attrs: name
        (ROOT's is "scene"), depth (ROOT 0, its children 1, ...), kept_boxes (0 for ROOT).
        Edge attrs: frequency and proportion of the kept label pair, None on edges from ROOT.
    """
    tree = nx.DiGraph(root=ROOT)
    tree.add_node(ROOT, name=ROOT, depth=0, kept_boxes=0)
    labels = sorted(graph.nodes)
    for label in labels:
        attrs = graph.nodes[label]
        tree.add_node(label, name=attrs.get("name", label), kept_boxes=attrs.get("kept_boxes", 0))
    for label in labels:
        if graph.in_degree(label):
            parent = parents.choose_parent(graph, label).kept
            edge = graph.edges[parent, label]
            tree.add_edge(parent, label, **{key: edge[key] for key in _TREE_EDGE})
        else:
            tree.add_edge(ROOT, label, **dict.fromkeys(_TREE_EDGE))
    for label, depth in nx.shortest_path_length(tree, ROOT).items():
        tree.nodes[label]["depth"] = depth
    return tree


def label_tree(
    label_pairs: pa.Table,
    label_counts: Mapping[str, int] | pa.Table | None = None,
    names: Mapping[str, str] | None = None,
) -> nx.DiGraph:
    """display_tree of the label_graph of these statistics (see both for the arguments)."""
    return display_tree(label_graph(label_pairs, label_counts, names))


def node_link_data(graph: nx.DiGraph) -> dict:
    """networkx node-link data of a label graph or tree with the pinned networkx's own default
    keys ("nodes", "edges"), so ``nx.node_link_graph(json.load(f))`` reads it back."""
    return nx.node_link_data(graph)


def graph_from_node_link(data: dict) -> nx.DiGraph:
    """The graph or tree that node_link_data wrote (also after a JSON round trip); files from
    before networkx 3.4's key change, with "links" instead of "edges", read the same."""
    edges = "links" if "links" in data and "edges" not in data else "edges"
    return nx.node_link_graph(data, directed=True, multigraph=False, edges=edges)


def tree_summary(tree: nx.DiGraph) -> dict[str, int]:
    """run.json's "label_tree": labels (ROOT not counted), edges, deepest depth, labels under
    the root."""
    depths = [depth for _, depth in tree.nodes(data="depth")]
    return {
        "labels": tree.number_of_nodes() - 1,
        "edges": tree.number_of_edges(),
        "max_depth": max(depths, default=0),
        "under_root": tree.out_degree(ROOT) if ROOT in tree else 0,
    }


def graph_summary(graph: nx.DiGraph) -> dict[str, int]:
    """run.json's "label_graph": labels, accepted-pair edges left after the cycle rules,
    labels with several parents (the display tree keeps one), and closure pairs (label,
    descendant) with each label its own descendant: the size of the ground truth."""
    reach = sum(len(nx.descendants(graph, label)) + 1 for label in graph)
    return {
        "labels": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "multi_parent_labels": sum(1 for label in graph if graph.in_degree(label) > 1),
        "closure_pairs": reach,
    }


def label_tree_table(tree: nx.DiGraph) -> pa.Table:
    """schemas.LABEL_TREE: one row per node, ROOT included, sorted by (depth, label)."""
    rows = []
    for label, attrs in tree.nodes(data=True):
        parent = next(iter(tree.predecessors(label)), None)
        edge = tree.edges[parent, label] if parent is not None else {}
        rows.append(
            {
                "label": label,
                "name": attrs["name"],
                "parent": parent,
                "depth": attrs["depth"],
                "frequency": edge.get("frequency"),
                "proportion": edge.get("proportion"),
                "kept_boxes": attrs["kept_boxes"],
            }
        )
    rows.sort(key=lambda row: (row["depth"], row["label"]))
    return pa.Table.from_pylist(rows, schema=LABEL_TREE)


def _require_label(tree: nx.DiGraph, label: str) -> None:
    if label not in tree:
        raise KeyError(f"label {label!r} is not in the label tree")


def down(tree: nx.DiGraph, label: str, include_root: bool = False) -> frozenset[str]:
    """The label and all its descendants in the display tree (the ground truth is the label
    graph's closure instead: hierdata.ground_truth).

    down(tree, ROOT) is every label; ROOT itself is in it only with include_root=True.
    Raises KeyError for a label that is not a node.
    """
    _require_label(tree, label)
    labels = nx.descendants(tree, label) | {label}
    return frozenset(labels if include_root else labels - {ROOT})


def up(tree: nx.DiGraph, label: str) -> frozenset[str]:
    """The label and all its ancestors in the display tree, the virtual root excluded (empty
    for ROOT itself). Raises KeyError for a label that is not a node.
    """
    _require_label(tree, label)
    return frozenset((nx.ancestors(tree, label) | {label}) - {ROOT})


def down_sets(tree: nx.DiGraph) -> dict[str, frozenset[str]]:
    """down(tree, L) for every label L of the display tree (ROOT excluded), in one bottom-up
    pass: the tree relations that depths and tree distances are read from."""
    sets: dict[str, frozenset[str]] = {}
    for label in reversed(list(nx.topological_sort(tree))):
        sets[label] = frozenset({label}).union(*(sets[child] for child in tree.successors(label)))
    return {label: sets[label] for label in sorted(sets) if label != ROOT}


def _box_rows(kept: pa.Table, links: pa.Table, box_column: str) -> np.ndarray:
    """(L,) int64: the row of `kept` that each row of `links` names by (split, image_id,
    box_column), in the order of links' "link" column (0..L-1). Raises ValueError when a link
    names no kept box."""
    index = kept.select([*_IMAGE_KEY, "box_id"]).append_column(
        "row", pa.array(np.arange(kept.num_rows), pa.int64())
    )
    joined = links.join(
        index,
        keys=[*_IMAGE_KEY, box_column],
        right_keys=[*_IMAGE_KEY, "box_id"],
        join_type="left outer",
    )
    if joined.num_rows != links.num_rows or joined.column("row").null_count:
        raise ValueError(f"box_box pairs name {box_column}s that are not kept boxes")
    # A hash join returns rows in no particular order.
    order = pc.sort_indices(joined, [("link", "ascending")])
    return joined.column("row").take(order).to_numpy().astype(np.int64)


def image_trees(boxes: pa.Table, pairs: pa.Table) -> pa.Table:
    """Each kept box's parent in its image's tree (DESIGN "Per-image tree").

    A box's parent is the smallest (by area; a tie goes to the lower box_id) of the boxes that
    contain it in an accepted box ⊃ box pair, else the whole image (parent_box -1). Parents are
    strictly larger than their children, so every image's tree is acyclic.

    Args:
        boxes: schemas.BOXES of any number of images; only kept boxes get a row.
        pairs: schemas.PAIRS training pairs of those images: rows of kind "box_box" are the
            accepted box ⊃ box pairs; other rows (image ⊃ box) are ignored.
    Returns:
        schemas.IMAGE_TREES sorted by (split, image_id, box_id); depth 1 under the image,
        1 + the parent's depth under a box. Raises ValueError when a pair names a box that
        is not a kept box of `boxes`.
    """
    kept = boxes.filter(boxes.column("kept")).select([*_IMAGE_KEY, "box_id", "label", "area"])
    kept = kept.sort_by([(name, "ascending") for name in [*_IMAGE_KEY, "box_id"]])
    n = kept.num_rows
    links = pairs.filter(pc.equal(pairs.column("kind"), "box_box"))
    links = links.select([*_IMAGE_KEY, "parent_box", "child_box"]).append_column(
        "link", pa.array(np.arange(links.num_rows), pa.int64())
    )
    parent_row = _box_rows(kept, links, "parent_box")
    child_row = _box_rows(kept, links, "child_box")
    # Per child, candidate parents in (area, box_id) order: the first one is the smallest.
    area, box_id = kept.column("area").to_numpy(), kept.column("box_id").to_numpy()
    order = np.lexsort((box_id[parent_row], area[parent_row], child_row))
    child_row, parent_row = child_row[order], parent_row[order]
    first = np.ones(child_row.size, dtype=bool)
    first[1:] = child_row[1:] != child_row[:-1]
    parent_of = np.full(n, -1, dtype=np.int64)  # row of each box's parent box, -1: the image
    parent_of[child_row[first]] = parent_row[first]

    # One step per tree level, not per box: every box still below a box moves one level up.
    depth = np.ones(n, dtype=np.int32)
    ancestor = parent_of.copy()
    for _ in range(n):
        below_box = np.flatnonzero(ancestor >= 0)
        if below_box.size == 0:
            break
        depth[below_box] += 1
        ancestor[below_box] = parent_of[ancestor[below_box]]
    else:
        if np.any(ancestor >= 0):
            raise ValueError("box_box pairs form a cycle: a parent must be larger than its child")
    parent_box = np.where(parent_of >= 0, box_id[np.maximum(parent_of, 0)], _IMAGE_PARENT)
    columns = [
        kept.column("split"),
        kept.column("image_id"),
        kept.column("box_id"),
        kept.column("label"),
        pa.array(parent_box.astype(np.int32), pa.int32()),
        pa.array(depth, pa.int32()),
    ]
    return pa.table(columns, schema=IMAGE_TREES)
