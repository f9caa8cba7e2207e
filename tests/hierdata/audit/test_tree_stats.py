"""The label tree for auditors (hierdata.audit.tree_stats): multi-parent labels, the HTML tree."""

import json

import networkx as nx

from hierdata import trees
from hierdata.audit import tree_stats


def test_multi_parent_labels_show_the_parent_the_tree_kept(demo_output):
    """DESIGN "Label tree": a label with several parents keeps the most granular one."""
    out, stats = demo_output
    tree = trees.tree_from_node_link(json.loads((out / "trees" / "label_tree.json").read_text()))
    multi = stats["tree"]["multi_parent"]
    assert multi  # the synthetic taxonomy has Eye under Face and Person, Hubcap under Wheel, Car
    for entry in multi:
        kept = next(iter(tree.predecessors(entry["child"])))
        assert entry["kept_parent"] == kept
        assert [p["label"] for p in entry["parents"] if p["kept"]] == [kept]
        others = [p["label"] for p in entry["parents"] if not p["kept"]]
        assert all(nx.has_path(tree, other, kept) or other not in tree for other in others)


def test_tree_html_lists_every_label_once(demo_output):
    out, _ = demo_output
    tree = trees.tree_from_node_link(json.loads((out / "trees" / "label_tree.json").read_text()))
    markup = tree_stats.tree_html(tree, {})
    assert markup.count('class="tn"') == tree.number_of_nodes()
    inner = sum(1 for label in tree if tree.out_degree(label))
    assert markup.count("<details") == markup.count("</details>") == inner
    for label in tree:
        assert markup.count(f"<code>{label}</code>") == 1
