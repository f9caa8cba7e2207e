"""The label tree for auditors: size, depth and branching distributions, multi-parent labels
with the evidence the parent rule weighed, and the tree as nested collapsible HTML.
"""

import html
from collections import Counter

import networkx as nx

from hierdata import parents, trees


def label_edges(tree: nx.DiGraph) -> set[tuple[str, str]]:
    """(parent, child) edges between labels: the edges from the virtual root left out."""
    return {(parent, child) for parent, child in tree.edges if parent != trees.ROOT}


def summary(tree: nx.DiGraph) -> dict:
    """Labels, label -> label edges, depths and branching of the label tree.

    depth_histogram: {depth: labels} (root's children at depth 1); branching_histogram:
    {children: labels} over labels with at least one child (the root excluded, its children
    are "under_root"); leaves: labels without children.
    """
    labels = [label for label in tree if label != trees.ROOT]
    depths = Counter(tree.nodes[label]["depth"] for label in labels)
    branching = Counter(tree.out_degree(label) for label in labels if tree.out_degree(label))
    return {
        "labels": len(labels),
        "edges": len(label_edges(tree)),
        "under_root": tree.out_degree(trees.ROOT) if trees.ROOT in tree else 0,
        "max_depth": max(depths, default=0),
        "leaves": sum(1 for label in labels if tree.out_degree(label) == 0),
        "depth_histogram": dict(sorted(depths.items())),
        "branching_histogram": dict(sorted(branching.items())),
    }


def multi_parent(graph: nx.DiGraph, tree: nx.DiGraph, names: dict[str, str]) -> list[dict]:
    """Labels with several parents in the label graph, each with the evidence for every
    candidate parent and the one the display tree kept (parents.choose_parent).

    Each entry: child, child_name, kept_parent (the rule's choice), tree_parent (the parent in
    the run's stored tree: the same unless the tree file was edited), reason, and parents,
    strongest first: label, name, frequency, proportion, children_with_parent, child_boxes,
    share with its 95% interval (share_low, share_high), comparable (its interval reaches the
    strongest's lower bound), gave_way (an ancestor of another comparable parent), kept.
    Sorted by the number of parents (most first), then child label.
    """

    def name(label: str | None) -> str | None:
        if label is None:
            return None
        return names.get(label, graph.nodes[label].get("name", label) if label in graph else label)

    found = []
    for child in sorted(graph):
        if graph.in_degree(child) < 2:
            continue
        choice = parents.choose_parent(graph, child)
        tree_parent = next(iter(tree.predecessors(child)), None) if child in tree else None
        candidates = [
            {
                "label": c.parent,
                "name": name(c.parent),
                "frequency": c.frequency,
                "proportion": c.proportion,
                "children_with_parent": c.children_with_parent,
                "child_boxes": c.child_boxes,
                "share": c.share,
                "share_low": c.share_low,
                "share_high": c.share_high,
                "comparable": c.parent in choice.comparable,
                "gave_way": c.parent in choice.gave_way,
                "kept": c.parent == choice.kept,
            }
            for c in choice.candidates
        ]
        found.append(
            {
                "child": child,
                "child_name": name(child),
                "kept_parent": choice.kept,
                "kept_parent_name": name(choice.kept),
                "tree_parent": tree_parent,
                "reason": choice.reason,
                "parents": candidates,
            }
        )
    found.sort(key=lambda row: (-len(row["parents"]), row["child"]))
    return found


def _subtree_sizes(tree: nx.DiGraph) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for label in reversed(list(nx.topological_sort(tree))):
        sizes[label] = 1 + sum(sizes[child] for child in tree.successors(label))
    return sizes


def _children(tree: nx.DiGraph, label: str, sizes: dict[str, int]) -> list[str]:
    """Children largest subtree first, then most kept boxes, then label id."""
    return sorted(
        tree.successors(label), key=lambda c: (-sizes[c], -tree.nodes[c].get("kept_boxes", 0), c)
    )


def tree_html(tree: nx.DiGraph, names: dict[str, str]) -> str:
    """The label tree as nested <details> (a label with children) and <li> (a leaf).

    Each entry shows display name, label id, kept boxes and the kept edge's proportion and
    frequency; the root and its children start open. Built with an explicit stack, so a deep
    tree cannot reach Python's recursion limit.
    """
    if trees.ROOT not in tree:
        return "<p>empty tree</p>"
    sizes = _subtree_sizes(tree)
    parts: list[str] = []
    # Stack items: ("open", label, depth) renders a label; ("close", markup) closes its lists.
    stack: list[tuple] = [("open", trees.ROOT, 0)]
    while stack:
        item = stack.pop()
        if item[0] == "close":
            parts.append(item[1])
            continue
        _, label, depth = item
        attrs = tree.nodes[label]
        parent = next(iter(tree.predecessors(label)), None)
        edge = tree.edges[parent, label] if parent is not None else {}
        title = html.escape(names.get(label, attrs.get("name", label)))
        detail = [f"<code>{html.escape(label)}</code>", f"{attrs.get('kept_boxes', 0):,} boxes"]
        if edge.get("proportion") is not None:
            detail.append(f"p={edge['proportion']:.3f} f={edge['frequency']:,}")
        children = _children(tree, label, sizes)
        text = (
            f'<span class="tn" data-name="{title.lower()}">{title}</span> '
            f'<span class="td">{" · ".join(detail)}</span>'
        )
        if not children:
            parts.append(f"<li>{text}</li>")
            continue
        is_open = " open" if depth <= 0 else ""
        parts.append(
            f"<li><details{is_open}><summary>{text} "
            f'<span class="tc">({sizes[label] - 1} below)</span></summary><ul>'
        )
        stack.append(("close", "</ul></details></li>"))
        stack.extend(("open", child, depth + 1) for child in reversed(children))
    return '<ul class="tree">' + "".join(parts) + "</ul>"


def top_levels(tree: nx.DiGraph, max_children: tuple[int, ...] = (14, 6, 3)) -> nx.DiGraph:
    """The first len(max_children) levels of the tree for a picture: at most max_children[d]
    children under a label at depth d (largest subtrees first); the rest collapse into one
    "+N more" node per parent."""
    sizes = _subtree_sizes(tree)
    small = nx.DiGraph()
    small.add_node(trees.ROOT, name=trees.ROOT, depth=0)
    frontier = [trees.ROOT]
    while frontier:
        label = frontier.pop()
        depth = small.nodes[label]["depth"]
        if depth >= len(max_children):
            continue
        children = _children(tree, label, sizes)
        limit = max_children[depth]
        for child in children[:limit]:
            small.add_node(child, name=tree.nodes[child].get("name", child), depth=depth + 1)
            small.add_edge(label, child)
            frontier.append(child)
        if len(children) > limit:
            more = f"{label}#more"
            small.add_node(more, name=f"+{len(children) - limit} more", depth=depth + 1)
            small.add_edge(label, more)
    return small
