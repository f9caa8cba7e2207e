"""The display tree's parent rule: which of a label's parents in the label graph it keeps, with
the evidence for every candidate (DESIGN "Label tree"); the tree and the audit both call it.
"""

import math
from dataclasses import dataclass

import networkx as nx

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion successes / trials, in [0, 1].

    Unlike the normal interval it stays inside [0, 1] and is wide for small counts: 5 of 5 gives
    (0.57, 1.0), 101 of 140 gives (0.64, 0.79). No trials give the uninformative (0, 1).
    """
    if trials <= 0:
        return 0.0, 1.0
    share = successes / trials
    z2 = z * z
    centre = share + z2 / (2 * trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials))
    scale = 1 + z2 / trials
    return max(0.0, (centre - spread) / scale), min(1.0, (centre + spread) / scale)


@dataclass(frozen=True)
class ParentCandidate:
    """One parent P of a label C in the label graph, with the evidence for P ⊃ C.

    children_with_parent: C boxes (stats split) inside at least one P box as a candidate child;
    child_boxes: kept C boxes; share: their ratio, with its 95% Wilson interval
    [share_low, share_high]. frequency and proportion are the label pair's.
    """

    parent: str
    frequency: int
    proportion: float
    children_with_parent: int
    child_boxes: int
    share: float
    share_low: float
    share_high: float

    def strength(self) -> tuple:
        """Sort key, strongest first: most C boxes inside, then higher proportion, then higher
        frequency, then the parent's label id in ascending order."""
        return (-self.children_with_parent, -self.proportion, -self.frequency, self.parent)


@dataclass(frozen=True)
class ParentChoice:
    """The parent a label keeps in the display tree and why.

    candidates: every parent in the label graph, strongest first (ParentCandidate.strength);
    strongest: the first of them; comparable: those whose interval reaches the strongest's
    lower bound; gave_way: the comparable ones that are ancestors of another comparable one;
    kept: the parent kept; reason: one sentence for the audit, with display names.
    """

    child: str
    candidates: tuple[ParentCandidate, ...]
    comparable: frozenset[str]
    gave_way: frozenset[str]
    kept: str
    reason: str

    @property
    def strongest(self) -> str:
        return self.candidates[0].parent


def candidates(graph: nx.DiGraph, child: str) -> list[ParentCandidate]:
    """The parents of `child` in the label graph with their evidence, strongest first.

    Edge attributes read: frequency, proportion, children_with_parent, child_boxes (as
    trees.label_graph stores them from schemas.LABEL_PAIRS).
    """
    found = []
    for parent in graph.predecessors(child):
        edge = graph.edges[parent, child]
        inside, boxes = int(edge["children_with_parent"]), int(edge["child_boxes"])
        low, high = wilson_interval(inside, boxes)
        found.append(
            ParentCandidate(
                parent=parent,
                frequency=int(edge["frequency"]),
                proportion=float(edge["proportion"]),
                children_with_parent=inside,
                child_boxes=boxes,
                share=inside / boxes if boxes else 0.0,
                share_low=low,
                share_high=high,
            )
        )
    return sorted(found, key=ParentCandidate.strength)


def choose_parent(graph: nx.DiGraph, child: str) -> ParentChoice:
    """The parent a label with at least one parent in the label graph keeps (DESIGN "Label tree").

    The rule, exactly:

    1. Evidence for a parent P of label C: children_with_parent(P, C), the number of kept C
       boxes of the stats split lying in at least one P box as a candidate child. Every parent
       of C shares the denominator child_boxes(C), so this ranks parents by the share of C
       boxes found inside a P box; its 95% Wilson interval measures how sure that share is.
    2. The strongest parent S has the most C boxes inside; ties go to the higher proportion,
       then the higher frequency, then the lower label id.
    3. A parent P is comparable with S when its share's interval reaches S's lower bound
       (share_high(P) >= share_low(S), inclusive): the data cannot tell their shares apart.
    4. Among the comparable parents, one that is an ancestor, in the label graph, of another
       comparable parent gives way to it: Car ⊃ Wheel ⊃ Hubcap puts nearly every hubcap that
       is inside a wheel inside a car as well, so "most boxes inside" alone would always skip
       the direct parent. The strongest of the remaining comparable parents is kept.

    Depth alone never decides: a deeper parent wins only over its own ancestors and only with
    a share statistically indistinguishable from the strongest. Five Segway ⊃ Wheel boxes
    (share 5/140, interval up to 0.08) never outweigh 101 Car ⊃ Wheel ones (0.64 to 0.79).

    Raises ValueError when `child` has no parent in the graph.
    """
    found = candidates(graph, child)
    if not found:
        raise ValueError(f"label {child!r} has no parent in the label graph")
    strongest = found[0]
    comparable = [c for c in found if c.share_high >= strongest.share_low]
    names = {c.parent for c in comparable}
    # A comparable parent with a comparable descendant gives way to it (rule 4).
    gave_way = set().union(*(nx.ancestors(graph, c.parent) for c in comparable)) & names
    kept = next(c for c in comparable if c.parent not in gave_way)
    reason = _reason(graph, found, gave_way, kept)
    return ParentChoice(
        child, tuple(found), frozenset(names), frozenset(gave_way), kept.parent, reason
    )


def _reason(
    graph: nx.DiGraph, found: list[ParentCandidate], gave_way: set[str], kept: ParentCandidate
) -> str:
    """One sentence saying why `kept` won, for the audit report."""

    def name(label: str) -> str:
        return str(graph.nodes[label].get("name", label))

    if len(found) == 1:
        return "its only parent in the label graph"
    inside = f"{kept.children_with_parent} of {kept.child_boxes}"
    rivals = [c for c in found if c is not kept and c.parent not in gave_way]
    if not gave_way:
        best_rival = rivals[0].children_with_parent
        tie = (
            ""
            if kept.children_with_parent > best_rival
            else " (tie broken by proportion, frequency, label id)"
        )
        return f"most child boxes inside: {inside}, against at most {best_rival}{tie}"
    yielded = ", ".join(sorted(name(p) for p in gave_way))
    return (
        f"{yielded} gave way to a descendant in the label graph with a share within the 95% "
        f"interval of the strongest; of the rest it holds the most child boxes: {inside}"
    )
