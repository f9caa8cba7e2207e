"""The label tree for auditors (hierdata.audit.tree_stats): multi-parent labels, the HTML tree."""

import json

import networkx as nx

from hierdata import trees
from hierdata.audit import tree_stats


def test_multi_parent_labels_show_the_evidence_and_the_parent_the_tree_kept(demo_output):
    """DESIGN "Label tree": every candidate parent with its evidence, the kept one and why."""
    out, stats = demo_output
    tree = trees.graph_from_node_link(json.loads((out / "trees" / "label_tree.json").read_text()))
    multi = stats["tree"]["multi_parent"]
    assert multi  # the synthetic taxonomy has Eye under Face and Person, Hubcap under Wheel, Car
    for entry in multi:
        kept = next(iter(tree.predecessors(entry["child"])))
        assert entry["kept_parent"] == entry["tree_parent"] == kept
        assert [p["label"] for p in entry["parents"] if p["kept"]] == [kept]
        inside = [p["children_with_parent"] for p in entry["parents"]]
        assert inside == sorted(inside, reverse=True)  # strongest first
        for parent in entry["parents"]:
            assert parent["share_low"] <= parent["share"] <= parent["share_high"]
            assert parent["share"] == parent["children_with_parent"] / parent["child_boxes"]
        # In the synthetic taxonomy each passed-over parent is an ancestor of the kept one
        # with a share the data cannot tell apart: it gave way (rule 4 of the parent rule).
        others = [p for p in entry["parents"] if not p["kept"]]
        assert all(p["gave_way"] and nx.has_path(tree, p["label"], kept) for p in others)
        assert entry["reason"]


def test_tree_html_lists_every_label_once(demo_output):
    out, _ = demo_output
    tree = trees.graph_from_node_link(json.loads((out / "trees" / "label_tree.json").read_text()))
    markup = tree_stats.tree_html(tree, {})
    assert markup.count('class="tn"') == tree.number_of_nodes()
    inner = sum(1 for label in tree if tree.out_degree(label))
    assert markup.count("<details") == markup.count("</details>") == inner
    for label in tree:
        assert markup.count(f"<code>{label}</code>") == 1
