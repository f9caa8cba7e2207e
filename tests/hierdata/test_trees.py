"""Tests of hierdata.trees: the DESIGN "Label graph" and "Label tree" rules, node-link JSON,
run.json summaries and per-image trees.

The synthetic dataset checks the whole chain: mining its train split rebuilds its taxonomy.
"""

import json
from typing import Any

import networkx as nx
import pyarrow as pa
import pytest

from hierdata import input_files, isa, mining, readers, stats, synth
from hierdata.stats import LabelPairCounts
from hierdata.trees import (
    ROOT,
    down,
    down_sets,
    graph_from_node_link,
    graph_summary,
    image_trees,
    label_graph,
    label_tree,
    label_tree_table,
    node_link_data,
    tree_summary,
    up,
)
from schemas.tables import LABEL_TREE
from tests.hierdata.label_pair_rows import PARENT_BOXES, label_pairs, pair


def parents(tree: nx.DiGraph) -> dict[str, str]:
    """label -> its parent, for every node but the root."""
    return {child: parent for parent, child in tree.edges}


def edges(graph: nx.DiGraph) -> dict[tuple[str, str], tuple[int, float]]:
    """(parent, child) -> (frequency, proportion) of every edge."""
    return {(p, c): (a["frequency"], a["proportion"]) for p, c, a in graph.edges(data=True)}


def test_label_graph_edges_carry_the_pair_statistics_and_nodes_their_names() -> None:
    graph = label_graph(
        label_pairs(pair("car", "wheel", 108, 0.51, inside=101, child_boxes=140)),
        label_counts={"car": 7, "fish": 2},
        names={"car": "Car"},
    )
    assert graph.edges["car", "wheel"] == {
        "frequency": 108, "proportion": 0.51, "parents_with_child": 510,
        "parent_boxes": PARENT_BOXES, "children_with_parent": 101, "child_boxes": 140,
        "iou_median": 0.1, "near_duplicate_share": 0.0,
    }  # fmt: skip
    # Every label of label_counts is a node; names from `names`, else label_pairs, else the id.
    assert dict(graph.nodes(data=True)) == {
        "car": {"name": "Car", "kept_boxes": 7},
        "fish": {"name": "fish", "kept_boxes": 2},
        "wheel": {"name": "WHEEL", "kept_boxes": 0},
    }


def test_label_graph_keeps_the_mutual_pair_with_higher_proportion() -> None:
    graph = label_graph(label_pairs(("a", "b", 90, 0.3), ("b", "a", 60, 0.5), ("a", "c", 70, 0.2)))
    # b -> a wins on proportion although a -> b has the higher frequency; a -> c is untouched.
    assert edges(graph) == {("b", "a"): (60, 0.5), ("a", "c"): (70, 0.2)}
    assert sorted(graph.nodes) == ["a", "b", "c"]


def test_label_graph_breaks_a_three_cycle_at_its_weakest_edge() -> None:
    rows = [("a", "b", 100, 0.6), ("b", "c", 100, 0.25), ("c", "a", 100, 0.4)]
    graph = label_graph(label_pairs(*rows))
    assert edges(graph) == {("a", "b"): (100, 0.6), ("c", "a"): (100, 0.4)}
    assert nx.is_directed_acyclic_graph(graph)


def test_label_graph_keeps_a_dag_whole_and_drops_not_accepted_rows() -> None:
    # Several parents stay in the graph (the tree, not the graph, keeps one of them).
    rows = [
        ("car", "wheel", 300, 0.9),
        ("wheel", "hubcap", 200, 0.5),
        ("car", "hubcap", 250, 0.8),
        ("hubcap", "car", 5, 0.01, False),  # would close a cycle, but it is not accepted
    ]
    graph = label_graph(label_pairs(*rows))
    assert set(edges(graph)) == {("car", "wheel"), ("wheel", "hubcap"), ("car", "hubcap")}
    assert label_graph(label_pairs(("a", "b", 1, 0.1, False))).number_of_nodes() == 0


def test_label_graph_rejects_a_duplicated_accepted_pair() -> None:
    with pytest.raises(ValueError, match="twice"):
        label_graph(label_pairs(("a", "b", 60, 0.3), ("a", "b", 70, 0.4)))


def test_two_cycle_keeps_higher_proportion() -> None:
    tree = label_tree(label_pairs(("a", "b", 60, 0.3), ("b", "a", 60, 0.5)))
    assert parents(tree) == {"b": ROOT, "a": "b"}
    assert tree.edges["b", "a"] == {"frequency": 60, "proportion": 0.5}


def test_two_cycle_tie_then_frequency() -> None:
    tree = label_tree(label_pairs(("a", "b", 90, 0.4), ("b", "a", 60, 0.4)))
    assert parents(tree) == {"a": ROOT, "b": "a"}


def test_two_cycle_full_tie_keeps_pair_of_ids_sorting_first() -> None:
    tree = label_tree(label_pairs(("b", "a", 60, 0.4), ("a", "b", 60, 0.4)))
    assert parents(tree) == {"a": ROOT, "b": "a"}


@pytest.mark.parametrize(
    ("weakest", "expected"),
    [
        (("c", "a"), {"a": ROOT, "b": "a", "c": "b"}),
        (("a", "b"), {"b": ROOT, "c": "b", "a": "c"}),
        (("b", "c"), {"c": ROOT, "a": "c", "b": "a"}),
    ],
)
def test_longer_cycle_drops_weakest_edge(weakest: tuple[str, str], expected: dict) -> None:
    cycle = [("a", "b"), ("b", "c"), ("c", "a")]
    rows = [(p, c, 100, 0.2 if (p, c) == weakest else 0.6) for p, c in cycle]
    assert parents(label_tree(label_pairs(*rows))) == expected


def test_longer_cycle_tie_then_frequency() -> None:
    rows = [("a", "b", 100, 0.5), ("b", "c", 70, 0.5), ("c", "a", 80, 0.5)]
    assert parents(label_tree(label_pairs(*rows))) == {"c": ROOT, "a": "c", "b": "a"}


def test_multi_parent_keeps_the_parent_holding_most_child_boxes() -> None:
    """DESIGN "Label tree": five Segway boxes must not outweigh a hundred Car ⊃ Wheel pairs."""
    rows = [
        pair("car", "wheel", 108, 0.51, inside=101, child_boxes=140),
        pair("segway", "wheel", 5, 1.0, inside=5, child_boxes=140),
    ]
    tree = label_tree(label_pairs(*rows))
    assert parents(tree)["wheel"] == "car"
    assert tree.edges["car", "wheel"] == {"frequency": 108, "proportion": 0.51}


def test_multi_parent_ancestor_gives_way_to_a_comparable_descendant() -> None:
    # Nearly every hubcap inside a wheel is inside its car too (the synthetic data's counts):
    # Car holds 4 more, within the 95% intervals, and is Wheel's ancestor, so Wheel is kept.
    rows = [
        pair("car", "wheel", 348, 0.81, inside=348, child_boxes=377),
        pair("car", "hubcap", 299, 0.81, inside=299, child_boxes=337),
        pair("wheel", "hubcap", 295, 0.78, inside=295, child_boxes=337),
    ]
    tree = label_tree(label_pairs(*rows))
    assert parents(tree) == {"car": ROOT, "wheel": "car", "hubcap": "wheel"}


def test_depth_alone_never_decides() -> None:
    # Hair ⊃ Head is accepted and Hair lies below Human body, but holds far fewer heads.
    rows = [
        pair("body", "head", 36, 0.23, inside=36, child_boxes=63),
        pair("hair", "head", 14, 0.20, inside=14, child_boxes=63),
        pair("body", "hair", 9, 0.14, inside=9, child_boxes=30),
    ]
    assert parents(label_tree(label_pairs(*rows)))["head"] == "body"


def test_orphans_hang_from_scene() -> None:
    rows = [("car", "wheel", 300, 0.9), ("house", "bird", 75, 0.05, False)]
    tree = label_tree(label_pairs(*rows))
    # Not-accepted pairs make neither edges nor nodes.
    assert parents(tree) == {"car": ROOT, "wheel": "car"}
    tree = label_tree(label_pairs(*rows), label_counts={"car": 5, "bird": 7, "fish": 2})
    assert parents(tree) == {"car": ROOT, "wheel": "car", "bird": ROOT, "fish": ROOT}
    assert tree.edges[ROOT, "fish"] == {"frequency": None, "proportion": None}
    # Display names come from label_pairs (any row), else the label id.
    assert tree.nodes["bird"]["name"] == "BIRD" and tree.nodes["fish"]["name"] == "fish"
    assert tree.graph["root"] == ROOT and tree.nodes[ROOT]["name"] == "scene"


def test_depths_names_and_kept_boxes() -> None:
    rows = [("car", "wheel", 300, 0.9), ("wheel", "hubcap", 200, 0.5)]
    tree = label_tree(label_pairs(*rows), label_counts={"car": 40, "hubcap": 12, "bus": 3})
    assert {label: attrs["depth"] for label, attrs in tree.nodes(data=True)} == {
        ROOT: 0, "bus": 1, "car": 1, "wheel": 2, "hubcap": 3,
    }  # fmt: skip
    # kept_boxes: label_counts wins, else label_pairs' parent_boxes, else 0.
    kept = {label: attrs["kept_boxes"] for label, attrs in tree.nodes(data=True)}
    assert kept == {ROOT: 0, "bus": 3, "car": 40, "wheel": PARENT_BOXES, "hubcap": 12}
    assert label_tree(label_pairs(*rows)).nodes["hubcap"]["kept_boxes"] == 0
    assert tree.nodes["wheel"]["name"] == "WHEEL"


def test_label_counts_table_is_summed_per_label() -> None:
    counts = pa.table({"label": ["car", "fish", "car"], "kept_boxes": [2, 1, 3]})
    tree = label_tree(label_pairs(("car", "wheel", 300, 0.9)), label_counts=counts)
    assert tree.nodes["car"]["kept_boxes"] == 5 and parents(tree)["fish"] == ROOT


def test_scene_is_a_reserved_label_id() -> None:
    with pytest.raises(ValueError, match="reserved"):
        label_tree(label_pairs(("car", "wheel", 300, 0.9)), label_counts={ROOT: 1})


def sample_tree() -> nx.DiGraph:
    rows = [("car", "wheel", 300, 0.9), ("wheel", "hubcap", 200, 0.5), ("car", "door", 90, 0.4)]
    return label_tree(label_pairs(*rows), label_counts={"bus": 3})


def test_node_link_round_trip_with_networkx_own_keys() -> None:
    tree = sample_tree()
    data = json.loads(json.dumps(node_link_data(tree)))
    assert "edges" in data and "links" not in data and data["graph"] == {"root": ROOT}
    for again in (graph_from_node_link(data), nx.node_link_graph(data)):
        assert nx.utils.graphs_equal(again, tree)
        assert again.edges["car", "wheel"] == {"frequency": 300, "proportion": 0.9}
        assert again.nodes["hubcap"] == {"name": "HUBCAP", "depth": 3, "kept_boxes": 0}
    # Files written before networkx 3.4 changed the key ("links") read the same.
    old = {key if key != "edges" else "links": value for key, value in data.items()}
    assert nx.utils.graphs_equal(graph_from_node_link(old), tree)


def test_run_json_summaries_of_graph_and_tree() -> None:
    rows = [
        ("car", "wheel", 300, 0.9), ("wheel", "hubcap", 200, 0.5), ("car", "hubcap", 250, 0.8),
    ]  # fmt: skip
    graph = label_graph(label_pairs(*rows), label_counts={"lone": 3})
    assert graph_summary(graph) == {
        "labels": 4,
        "edges": 3,
        "multi_parent_labels": 1,  # hubcap
        # car: car, wheel, hubcap; wheel: wheel, hubcap; hubcap; lone
        "closure_pairs": 7,
    }
    assert tree_summary(label_tree(label_pairs(*rows), label_counts={"lone": 3})) == {
        "labels": 4,
        "edges": 4,
        "max_depth": 3,  # scene > car > wheel > hubcap
        "under_root": 2,  # car and the lone label
    }


def test_label_tree_table_rows() -> None:
    table = label_tree_table(sample_tree())
    assert table.schema == LABEL_TREE
    assert table.to_pylist() == [
        {"label": ROOT, "name": "scene", "parent": None, "depth": 0, "frequency": None,
         "proportion": None, "kept_boxes": 0},
        {"label": "bus", "name": "bus", "parent": ROOT, "depth": 1, "frequency": None,
         "proportion": None, "kept_boxes": 3},
        {"label": "car", "name": "CAR", "parent": ROOT, "depth": 1, "frequency": None,
         "proportion": None, "kept_boxes": PARENT_BOXES},
        {"label": "door", "name": "DOOR", "parent": "car", "depth": 2, "frequency": 90,
         "proportion": 0.4, "kept_boxes": 0},
        {"label": "wheel", "name": "WHEEL", "parent": "car", "depth": 2, "frequency": 300,
         "proportion": 0.9, "kept_boxes": PARENT_BOXES},
        {"label": "hubcap", "name": "HUBCAP", "parent": "wheel", "depth": 3, "frequency": 200,
         "proportion": 0.5, "kept_boxes": 0},
    ]  # fmt: skip


def test_down_up() -> None:
    tree = sample_tree()
    assert down(tree, "car") == {"car", "wheel", "hubcap", "door"}
    assert down(tree, "hubcap") == {"hubcap"}
    assert down(tree, ROOT) == {"car", "wheel", "hubcap", "door", "bus"}
    assert down(tree, ROOT, include_root=True) == {ROOT, "car", "wheel", "hubcap", "door", "bus"}
    assert up(tree, "hubcap") == {"hubcap", "wheel", "car"}
    assert up(tree, "bus") == {"bus"}
    assert up(tree, ROOT) == frozenset()
    with pytest.raises(KeyError, match="truck"):
        down(tree, "truck")
    with pytest.raises(KeyError, match="truck"):
        up(tree, "truck")
    sets = down_sets(tree)
    assert sets == {label: down(tree, label) for label in tree if label != ROOT}


@pytest.fixture(scope="module")
def synthetic_train(tmp_path_factory) -> dict[str, Any]:
    """The synthetic train split run through readers, mining and stats with DESIGN defaults."""
    root = tmp_path_factory.mktemp("synth")
    summary = synth.write_synthetic_dataset(str(root), {"train": 1200})
    names = input_files.read_class_descriptions(summary["class_descriptions"])
    edges = input_files.read_hierarchy(summary["hierarchy"])
    rows, _ = readers.read_boxes_file(summary["splits"]["train"]["path"], "train", names)
    boxes = mining.index_boxes(rows, min_box_area=0.01)
    image_box, candidates = mining.mine_pairs(boxes)
    counts = LabelPairCounts.of_images(boxes, candidates)
    pairs = stats.label_pair_stats(counts, names, isa_pairs=isa.isa_pairs(edges))
    accepted = stats.accepted_label_pairs(pairs)
    training = pa.concat_tables([image_box, stats.filter_accepted(candidates, accepted)])
    return {"boxes": boxes, "label_pairs": pairs, "label_counts": counts.labels, "pairs": training}


def test_synthetic_label_tree_equals_taxonomy(synthetic_train: dict[str, Any]) -> None:
    """The closed loop: mining, statistics (same-object filter included) and the parent rule
    rebuild exactly the synthetic taxonomy."""
    rows = synthetic_train["label_pairs"].to_pylist()
    same_object = {(r["parent_label"], r["child_label"]) for r in rows if r["same_object"]}
    assert not same_object & synth.true_part_of_pairs()  # the filter refuses no true pair
    tree = label_tree(synthetic_train["label_pairs"])
    truth = {label.label_id: label.parent or ROOT for label in synth.TAXONOMY}
    in_tree = {label.label_id for label in synth.TAXONOMY if label.level != "object"}
    in_tree |= {label.parent for label in synth.TAXONOMY if label.parent}
    assert parents(tree) == {label: truth[label] for label in in_tree}
    # With label_counts every label with kept boxes is a node, under its true parent or scene.
    tree = label_tree(synthetic_train["label_pairs"], synthetic_train["label_counts"])
    labels = set(synthetic_train["label_counts"].column("label").to_pylist())
    assert parents(tree) == {label: truth[label] for label in labels}
    hubcap = synth.TAXONOMY[2].label_id
    assert (tree.nodes[hubcap]["name"], tree.nodes[hubcap]["depth"]) == ("Hubcap", 3)
    assert tree.nodes[hubcap]["kept_boxes"] == synth_kept(synthetic_train, hubcap)


def synth_kept(synthetic_train: dict[str, Any], label: str) -> int:
    counts = synthetic_train["label_counts"].to_pylist()
    return next(row["kept_boxes"] for row in counts if row["label"] == label)


def test_synthetic_image_trees_follow_accepted_pairs(synthetic_train: dict[str, Any]) -> None:
    boxes, pairs = synthetic_train["boxes"], synthetic_train["pairs"]
    table = image_trees(boxes, pairs)
    kept = boxes.filter(boxes.column("kept"))
    assert table.num_rows == kept.num_rows
    label_of = {
        (r["image_id"], r["box_id"]): r["label"]
        for r in kept.select(["image_id", "box_id", "label"]).to_pylist()
    }
    rows = table.to_pylist()
    under_box = [(label_of[r["image_id"], r["parent_box"]], r["label"]) for r in rows
                 if r["parent_box"] >= 0]  # fmt: skip
    # A box's parent is always an accepted (ancestor) label; most often the direct one.
    assert set(under_box) <= synth.true_part_of_pairs()
    direct = {(label.parent, label.label_id) for label in synth.TAXONOMY if label.parent}
    assert sum(pair in direct for pair in under_box) >= 0.95 * len(under_box)
    assert max(r["depth"] for r in rows) == 3
