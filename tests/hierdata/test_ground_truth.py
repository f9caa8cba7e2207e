"""The evaluation ground truth (hierdata.ground_truth, DESIGN "Ground truth"): the closure of the
label graph, not of the display tree."""

import networkx as nx
import pyarrow.parquet as pq

from hierdata import ground_truth, trees
from schemas.tables import LABEL_CLOSURE
from tests.hierdata.label_pair_rows import label_pairs, pair

# Car ⊃ Wheel ⊃ Hubcap and Car ⊃ Hubcap; Segway ⊃ Wheel (weak: the tree drops it, the ground
# truth keeps it); a mutual pair and a not-accepted row that make no edge.
ROWS = [
    pair("car", "wheel", 108, 0.51, inside=101, child_boxes=140),
    pair("segway", "wheel", 5, 1.0, inside=5, child_boxes=140),
    pair("wheel", "hubcap", 295, 0.78),
    pair("car", "hubcap", 299, 0.81),
    pair("hubcap", "bolt", 50, 0.4),
    pair("bolt", "hubcap", 20, 0.1),  # the weaker of a mutual pair: no edge
    pair("car", "bird", 9, 0.01, accepted=False),
]


def _graph() -> nx.DiGraph:
    return trees.label_graph(label_pairs(*ROWS), label_counts={"bird": 4}, names={"car": "Car"})


def test_closure_rows_every_label_its_own_descendant() -> None:
    closure = ground_truth.label_closure(_graph())
    assert closure.schema == LABEL_CLOSURE
    rows = {(r["label"], r["descendant"]): r["distance"] for r in closure.to_pylist()}
    assert rows == {
        ("bird", "bird"): 0,
        ("bolt", "bolt"): 0,
        ("car", "bolt"): 2, ("car", "car"): 0, ("car", "hubcap"): 1, ("car", "wheel"): 1,
        ("hubcap", "bolt"): 1, ("hubcap", "hubcap"): 0,
        ("segway", "bolt"): 3, ("segway", "hubcap"): 2, ("segway", "segway"): 0,
        ("segway", "wheel"): 1,
        ("wheel", "bolt"): 2, ("wheel", "hubcap"): 1, ("wheel", "wheel"): 0,
    }  # fmt: skip
    first = closure.to_pylist()[2]
    assert (first["label_name"], first["descendant_name"]) == ("Car", "BOLT")


def test_ground_truth_is_the_graph_closure_not_the_tree() -> None:
    graph = _graph()
    down = ground_truth.down_sets(ground_truth.label_closure(graph))
    tree = trees.display_tree(graph)
    # The tree keeps Wheel under Car only; Segway's wheels still count for a Segway query.
    assert trees.down(tree, "segway") == {"segway"}
    assert down["segway"] == {"segway", "wheel", "hubcap", "bolt"}
    assert down["car"] == {"car", "wheel", "hubcap", "bolt"}
    # Transitively closed, and every label (of the counts too) is in its own down-set.
    assert set(down) == set(graph) and all(label in down[label] for label in down)
    for label, below in down.items():
        assert all(down[member] <= below for member in below)
        assert below == nx.descendants(graph, label) | {label}


def test_closure_round_trip_through_parquet(tmp_path) -> None:
    closure = ground_truth.label_closure(_graph())
    path = tmp_path / "label_closure.parquet"
    pq.write_table(closure, path)
    assert ground_truth.read_closure(str(path)).equals(closure)
    assert ground_truth.down_sets(closure.select(["label", "descendant"])) == (
        ground_truth.down_sets(closure)
    )
