"""The stored label tree: display names from the class descriptions, and its run.json summary."""

import pyarrow as pa

from hierdata import named_tree, trees
from hierdata.stats import label_pair_stats
from schemas import LABEL_COUNTS, PAIR_COUNTS

CAR, WHEEL, HUBCAP, LONE = "/m/car", "/m/wheel", "/m/hubcap", "/m/lone"


def _tree(names: dict[str, str]):
    counts = pa.Table.from_pylist(
        [
            {"parent_label": CAR, "child_label": WHEEL, "frequency": 9, "parents_with_child": 8},
            {"parent_label": WHEEL, "child_label": HUBCAP, "frequency": 9, "parents_with_child": 8},
        ],
        schema=PAIR_COUNTS,
    )
    labels = pa.Table.from_pylist(
        [{"label": label, "kept_boxes": 10} for label in (CAR, WHEEL, HUBCAP, LONE)],
        schema=LABEL_COUNTS,
    )
    # The statistics table knows Car and Wheel only as ids, LONE not at all.
    label_pairs = label_pair_stats(counts, labels, {}, 5, 0.1)
    return named_tree.named_label_tree(label_pairs, labels, names)


def test_every_label_named_from_the_class_descriptions() -> None:
    tree = _tree({CAR: "Car", LONE: "Lone", "/m/other": "Other"})
    assert tree.nodes[CAR]["name"] == "Car"
    assert tree.nodes[LONE]["name"] == "Lone"  # a label with no accepted pair
    assert tree.nodes[WHEEL]["name"] == WHEEL  # unnamed: its id
    assert tree.nodes[trees.ROOT]["name"] == trees.ROOT
    assert "/m/other" not in tree


def test_tree_summary() -> None:
    tree = _tree({})
    assert named_tree.tree_summary(tree) == {
        "labels": 4,
        "edges": 4,
        "max_depth": 3,  # scene > Car > Wheel > Hubcap
        "under_root": 2,  # Car and the lone label
    }
