"""The display tree's parent rule (hierdata.parents, DESIGN "Label tree"): evidence, intervals,
which parent a label keeps and why."""

import pytest

from hierdata.parents import choose_parent, wilson_interval
from hierdata.trees import label_graph
from tests.hierdata.label_pair_rows import label_pairs, pair


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        (101, 140, 0.6420, 0.7890),  # Car ⊃ Wheel on Open Images V3
        (5, 140, 0.0153, 0.0809),  # Segway ⊃ Wheel
        (5, 5, 0.5655, 1.0),
        (0, 10, 0.0, 0.2775),
        (0, 0, 0.0, 1.0),  # no evidence: uninformative
    ],
)
def test_wilson_interval(successes: int, trials: int, low: float, high: float) -> None:
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-4)


def test_strongest_parent_holds_most_child_boxes_whatever_its_proportion() -> None:
    graph = label_graph(
        label_pairs(
            pair("car", "wheel", 108, 0.51, inside=101, child_boxes=140),
            pair("segway", "wheel", 5, 1.0, inside=5, child_boxes=140),
            pair("vehicle", "wheel", 18, 0.21, inside=18, child_boxes=140),
        )
    )
    choice = choose_parent(graph, "wheel")
    assert choice.kept == choice.strongest == "car"
    assert [c.parent for c in choice.candidates] == ["car", "vehicle", "segway"]
    assert choice.comparable == {"car"} and not choice.gave_way
    car = choice.candidates[0]
    assert (car.children_with_parent, car.child_boxes) == (101, 140)
    assert car.share == pytest.approx(101 / 140)
    assert choice.reason == "most child boxes inside: 101 of 140, against at most 18"


def test_ancestor_gives_way_to_a_comparable_descendant() -> None:
    graph = label_graph(
        label_pairs(
            pair("human body", "arm", 73, 0.53, inside=58, child_boxes=97),
            pair("human body", "hand", 36, 0.14, inside=27, child_boxes=30),
            pair("arm", "hand", 26, 0.14, inside=25, child_boxes=30),
            pair("woman", "hand", 20, 0.29, inside=17, child_boxes=30),
        )
    )
    choice = choose_parent(graph, "hand")
    # 25 of 30 is within 27 of 30's interval, and Arm lies below Human body; Woman's 17 is not.
    assert choice.strongest == "human body" and choice.kept == "arm"
    assert choice.comparable == {"human body", "arm"} and choice.gave_way == {"human body"}
    assert choice.reason.startswith("HUMAN BODY gave way to a descendant")


def test_an_unrelated_comparable_parent_is_not_passed_over() -> None:
    # Body gives way to its descendant Arm, but Coat (unrelated, comparable) holds more.
    graph = label_graph(
        label_pairs(
            pair("body", "arm", 70, 0.5, inside=60, child_boxes=100),
            pair("body", "hand", 30, 0.2, inside=28, child_boxes=30),
            pair("arm", "hand", 25, 0.1, inside=24, child_boxes=30),
            pair("coat", "hand", 25, 0.1, inside=26, child_boxes=30),
        )
    )
    choice = choose_parent(graph, "hand")
    assert choice.gave_way == {"body"} and choice.kept == "coat"


@pytest.mark.parametrize(
    ("rows", "kept"),
    [
        # Equal boxes inside: the higher proportion, then the higher frequency, then the id.
        ([pair("a", "c", 10, 0.2, inside=8), pair("b", "c", 10, 0.3, inside=8)], "b"),
        ([pair("a", "c", 12, 0.3, inside=8), pair("b", "c", 10, 0.3, inside=8)], "a"),
        ([pair("b", "c", 10, 0.3, inside=8), pair("a", "c", 10, 0.3, inside=8)], "a"),
    ],
)
def test_ties_go_to_proportion_then_frequency_then_label_id(rows: list, kept: str) -> None:
    choice = choose_parent(label_graph(label_pairs(*rows)), "c")
    assert choice.kept == kept
    assert choice.reason.endswith("(tie broken by proportion, frequency, label id)")


def test_only_parent_and_no_parent() -> None:
    graph = label_graph(label_pairs(("car", "wheel", 10, 0.5)))
    assert choose_parent(graph, "wheel").reason == "its only parent in the label graph"
    with pytest.raises(ValueError, match="no parent"):
        choose_parent(graph, "car")
