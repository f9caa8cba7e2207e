"""The official label hierarchy read as relations: is-a pairs for the guard, official part-of pairs,
and the guard's state for the run record.

Edges are (parent, child, relation) as hierdata.input_files.read_hierarchy yields them.

The guard blocks Subcategory chains only (Person/Woman, Vehicle/Car), not siblings or cousins
under one Subcategory parent. Measured on the Open Images V3 sample (validation + test,
--min_pair_frequency 5, --min_box_area 0): the human body parts (Head, Face, Arm, Hand, Nose)
are all direct Subcategories of the hierarchy root, so counting the root as a shared parent
would block the true part-of pairs Head/Face, Human body/Arm, Arm/Hand and Face/Nose. Below a
real parent the label pairs with at least 5 box pairs are Woman/Girl (median IoU 0.74) and
Tire/Wheel (0.82) under Person and Auto part, both one object under two labels that the
same-object filter (stats.is_same_object) already refuses; Violin/Cello (6 box pairs, IoU
0.15); and the cousins Dairy/Ice cream (15, 0.04) under Food. On full Open Images a sibling
rule would also refuse part-of pairs such as Chest of drawers/Drawer and Desk/Drawer (all
Subcategories of Furniture), so siblings and cousins are left to the statistics.
"""

from collections.abc import Collection, Iterable, Sequence

import networkx as nx
import pyarrow as pa

from hierdata import stats

SUBCATEGORY = "Subcategory"
PART = "Part"
HIERARCHY_HINT = "pass --hierarchy, or put bbox_labels_600_hierarchy.json in --input"


def _graph(edges: Iterable[tuple[str, str, str]], relations: Collection[str]) -> nx.DiGraph:
    """Parent -> child graph of the edges whose relation is in `relations`."""
    graph = nx.DiGraph()
    graph.add_edges_from((parent, child) for parent, child, rel in edges if rel in relations)
    return graph


def isa_pairs(edges: Iterable[tuple[str, str, str]]) -> frozenset[tuple[str, str]]:
    """(ancestor, descendant) for every pair joined by a chain of Subcategory edges only.

    Woman -> Person and Car -> Land vehicle -> Vehicle give (Person, Woman), (Land vehicle, Car)
    and (Vehicle, Car). A Part edge anywhere on the way breaks the chain: (Bicycle, Bicycle wheel)
    is part-of, not is-a. One direction per pair: stats.label_pair_stats checks both. The
    hierarchy root (Open Images' "Entity") is included like any label; it has no boxes, so its
    pairs never meet a candidate. A label is never paired with itself, even on a cycle.

    Args:
        edges: (parent, child, relation) triples; relations other than "Subcategory" are ignored.
    """
    graph = _graph(edges, {SUBCATEGORY})
    return frozenset(
        (ancestor, descendant)
        for ancestor in graph
        for descendant in nx.descendants(graph, ancestor)
        if descendant != ancestor
    )


def official_part_pairs(edges: Iterable[tuple[str, str, str]]) -> frozenset[tuple[str, str]]:
    """(P, C) for every part-of relation the hierarchy states, directly or transitively.

    C is a part of P when a path P -> ... -> C starts with a Part edge and then follows Part or
    Subcategory edges: Person -Part-> Human body -Part-> Human face makes the face a part of a
    person, and a Part target's subcategories are parts too (every kind of musical instrument
    that Building lists as its Part). Parts are not inherited downwards along is-a: Woman is a
    Subcategory of Person, but (Woman, Human face) is not stated, so it is not official here.
    """
    edges = list(edges)
    everything = _graph(edges, {SUBCATEGORY, PART})
    pairs = set()
    for parent, target, relation in edges:
        if relation == PART:
            below = nx.descendants(everything, target) | {target}
            pairs.update((parent, child) for child in below if child != parent)
    return frozenset(pairs)


def _sorted_lists(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    return [[parent, child] for parent, child in sorted(set(pairs))]


def official_part_agreement(
    accepted: Collection[tuple[str, str]],
    edges: Iterable[tuple[str, str, str]],
    isa_blocked: Collection[tuple[str, str]] = (),
) -> dict:
    """How the accepted label pairs compare with the hierarchy's own Part relations (for audits).

    Args:
        accepted: (parent_label, child_label) pairs accepted by the label-pair statistics.
        edges: the hierarchy's (parent, child, relation) triples.
        isa_blocked: pairs that passed both thresholds but were refused by the is-a guard.
    Returns:
        A JSON-serialisable dict; every list holds [parent, child] pairs sorted by label id:
        "official_part_edges": the number of direct Part edges in the hierarchy;
        "official_part_relations": the number of pairs official_part_pairs derives from them;
        "accepted": the number of accepted pairs;
        "accepted_official_part": accepted pairs that are official part-of relations;
        "accepted_new": accepted pairs that the hierarchy does not state;
        "official_not_accepted": direct Part edges that were not accepted (the transitive
        relations are left out: through "Building" alone they run into the hundreds);
        "isa_blocked": the given is-a-blocked pairs;
        "counts": the length of each of those four lists.
    """
    edges = list(edges)
    accepted = set(accepted)
    official = official_part_pairs(edges)
    direct = {(parent, child) for parent, child, relation in edges if relation == PART}
    lists = {
        "accepted_official_part": _sorted_lists(accepted & official),
        "accepted_new": _sorted_lists(accepted - official),
        "official_not_accepted": _sorted_lists(direct - accepted),
        "isa_blocked": _sorted_lists(isa_blocked),
    }
    return {
        "official_part_edges": len(direct),
        "official_part_relations": len(official),
        "accepted": len(accepted),
        **lists,
        "counts": {name: len(pairs) for name, pairs in lists.items()},
    }


def label_pair_agreement(
    label_pairs: pa.Table,
    edges: Sequence[tuple[str, str, str]],
    min_pair_frequency: int,
    min_pair_proportion: float,
) -> dict | None:
    """run.json's "official_hierarchy": official_part_agreement of a run's statistics.

    Args:
        label_pairs: schemas.LABEL_PAIRS of the run.
        edges: the hierarchy's (parent, child, relation) triples; empty when the run had none.
        min_pair_frequency, min_pair_proportion: the run's thresholds, to tell which is-a pairs
            the guard blocked (stats.isa_blocked_pairs).
    Returns:
        The agreement dict, or None without a hierarchy.
    """
    if not edges:
        return None
    return official_part_agreement(
        stats.accepted_label_pairs(label_pairs),
        edges,
        stats.isa_blocked_pairs(label_pairs, min_pair_frequency, min_pair_proportion),
    )


def guard_off_reason(hierarchy: str | None) -> str:
    """Why the is-a guard is off: no hierarchy file, or --isa_guard off with one."""
    if hierarchy:
        return "--isa_guard off"
    return (
        f"no hierarchy file ({HIERARCHY_HINT}); label pairs such as Person/Woman or "
        "Vehicle/Car can then be accepted as part-of"
    )


def guard_state(
    label_pairs: pa.Table,
    hierarchy: str | None,
    guard_on: bool,
    isa_pair_count: int,
    min_pair_frequency: int,
    min_pair_proportion: float,
) -> dict:
    """run.json's "isa_guard": whether the is-a guard ran, and what it did.

    Args:
        label_pairs: schemas.LABEL_PAIRS of the run.
        hierarchy: the hierarchy file's URL, None when the run had none.
        guard_on: the resolved --isa_guard (on exactly when a hierarchy is read and not off).
        isa_pair_count: the number of is-a pairs the hierarchy gave (isa_pairs).
        min_pair_frequency, min_pair_proportion: the run's thresholds.
    Returns:
        {"state": "on", "hierarchy": url, "isa_pairs": n, "blocked": n}, blocked counting the
        label pairs over both thresholds that the guard refused; or {"state": "off", "reason":
        guard_off_reason(hierarchy)}.
    """
    if not guard_on:
        return {"state": "off", "reason": guard_off_reason(hierarchy)}
    blocked = stats.isa_blocked_pairs(label_pairs, min_pair_frequency, min_pair_proportion)
    return {
        "state": "on",
        "hierarchy": hierarchy,
        "isa_pairs": isa_pair_count,
        "blocked": len(blocked),
    }
