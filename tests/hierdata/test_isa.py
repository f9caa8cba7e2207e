"""Tests of hierdata.isa: is-a pairs for the guard and agreement with the official Part edges.

Label ids of the real hierarchy were checked against its class-descriptions-boxable.csv.
"""

import json
from pathlib import Path

import pytest

from hierdata import input_files, synth
from hierdata.isa import (
    guard_off_reason,
    guard_state,
    isa_pairs,
    label_pair_agreement,
    official_part_agreement,
    official_part_pairs,
)
from hierdata.stats import label_pair_stats
from tests.hierdata.label_pair_rows import pair_counts

ENTITY = "/m/0bl9f"  # the root of the real hierarchy; no class row, no boxes
PERSON, WOMAN, MAN = "/m/01g317", "/m/03bt1vf", "/m/04yx4"
VEHICLE, LAND_VEHICLE, CAR = "/m/07yv9", "/m/01prls", "/m/0k4j"
ANIMAL, MAMMAL, CARNIVORE, DOG = "/m/0jbk", "/m/04rky", "/m/01lrl", "/m/0bt9lr"
BICYCLE, BICYCLE_WHEEL, SPORTS_EQUIPMENT = "/m/0199g", "/m/01bqk0", "/m/05y5lj"
HUMAN_BODY, HUMAN_FACE = "/m/02p0tk3", "/m/0dzct"
BUILDING, MUSICAL_INSTRUMENT, GUITAR = "/m/0cgh4", "/m/04szw", "/m/0342h"
DOOR, DOOR_HANDLE = "/m/02dgv", "/m/03c7gz"

# a -Sub-> b -Part-> c -Sub-> d -Part-> e, and q -Sub-> a.
HAND_EDGES = [
    ("a", "b", "Subcategory"),
    ("b", "c", "Part"),
    ("c", "d", "Subcategory"),
    ("d", "e", "Part"),
    ("q", "a", "Subcategory"),
]


@pytest.fixture(scope="module")
def real(shared_data: Path) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    meta = shared_data / "openimages-v4-meta"
    edges = input_files.read_hierarchy(str(meta / "bbox_labels_600_hierarchy.json"))
    return edges, input_files.read_class_descriptions(str(meta / "class-descriptions-boxable.csv"))


def test_isa_pairs_follow_subcategory_chains_only() -> None:
    assert isa_pairs(HAND_EDGES) == {("q", "a"), ("q", "b"), ("a", "b"), ("c", "d")}


def test_isa_pairs_never_pair_a_label_with_itself() -> None:
    cycle = [("a", "b", "Subcategory"), ("b", "a", "Subcategory")]
    assert isa_pairs(cycle) == {("a", "b"), ("b", "a")}


def test_real_hierarchy_ids_are_the_named_classes(real) -> None:
    _, names = real
    expected = {
        PERSON: "Person", WOMAN: "Woman", MAN: "Man", VEHICLE: "Vehicle",
        LAND_VEHICLE: "Land vehicle", CAR: "Car", ANIMAL: "Animal", MAMMAL: "Mammal",
        CARNIVORE: "Carnivore", DOG: "Dog", BICYCLE: "Bicycle", BICYCLE_WHEEL: "Bicycle wheel",
        HUMAN_FACE: "Human face", GUITAR: "Guitar", DOOR_HANDLE: "Door handle",
    }  # fmt: skip
    assert {label: names[label] for label in expected} == expected
    assert ENTITY not in names


def test_real_isa_pairs(real) -> None:
    edges, _ = real
    pairs = isa_pairs(edges)
    for ancestor, descendant in [
        (PERSON, WOMAN),
        (PERSON, MAN),
        (LAND_VEHICLE, CAR),
        (VEHICLE, CAR),  # Vehicle -> Land vehicle -> Car
        (ANIMAL, DOG),  # Animal -> Mammal -> Carnivore -> Dog
        (MAMMAL, DOG),
        (ENTITY, WOMAN),  # the root is kept; it has no boxes
    ]:
        assert (ancestor, descendant) in pairs
        assert (descendant, ancestor) not in pairs  # one direction only
    # In the v4 file Person hangs directly from Entity, not from Mammal.
    assert (MAMMAL, PERSON) not in pairs and (PERSON, MAMMAL) not in pairs
    # Part edges are not is-a: Bicycle ⊃ Bicycle wheel, Person ⊃ Human body ⊃ Human face,
    # Sports equipment -Sub-> Bicycle -Part-> Bicycle wheel.
    for whole, part in [
        (BICYCLE, BICYCLE_WHEEL),
        (PERSON, HUMAN_FACE),
        (WOMAN, HUMAN_FACE),
        (SPORTS_EQUIPMENT, BICYCLE_WHEEL),
        (DOOR, DOOR_HANDLE),
    ]:
        assert (whole, part) not in pairs and (part, whole) not in pairs
    assert all(a != b for a, b in pairs)


def test_official_part_pairs_start_with_a_part_edge() -> None:
    # b ⊃ c directly, b ⊃ d (a subcategory of its part c), b ⊃ e (a part of that subcategory),
    # d ⊃ e. Not a ⊃ c or q ⊃ c: parts are not handed up an is-a chain.
    assert official_part_pairs(HAND_EDGES) == {("b", "c"), ("b", "d"), ("b", "e"), ("d", "e")}


def test_real_official_part_pairs(real) -> None:
    edges, _ = real
    official = official_part_pairs(edges)
    assert (BICYCLE, BICYCLE_WHEEL) in official  # a direct Part edge
    assert (PERSON, HUMAN_FACE) in official  # Person -Part-> Human body -Part-> Human face
    assert (BUILDING, GUITAR) in official  # Building -Part-> Musical instrument -Sub-> Guitar
    # Not stated: a Woman's face (is-a below the whole) and a Sports equipment's wheel.
    assert (WOMAN, HUMAN_FACE) not in official
    assert (SPORTS_EQUIPMENT, BICYCLE_WHEEL) not in official
    assert (HUMAN_FACE, PERSON) not in official


def test_official_part_agreement_report() -> None:
    accepted = [("b", "c"), ("d", "e"), ("b", "e"), ("x", "y")]
    report = official_part_agreement(accepted, HAND_EDGES, isa_blocked=[("q", "a")])
    assert report == {
        "official_part_edges": 2,
        "official_part_relations": 4,
        "accepted": 4,
        "accepted_official_part": [["b", "c"], ["b", "e"], ["d", "e"]],
        "accepted_new": [["x", "y"]],
        "official_not_accepted": [],
        "isa_blocked": [["q", "a"]],
        "counts": {
            "accepted_official_part": 3,
            "accepted_new": 1,
            "official_not_accepted": 0,
            "isa_blocked": 1,
        },
    }
    report = official_part_agreement([("b", "d")], HAND_EDGES)
    assert report["official_not_accepted"] == [["b", "c"], ["d", "e"]]
    assert json.loads(json.dumps(report)) == report


def _hand_statistics():
    counts = pair_counts(
        ("b", "c", 9, 5), ("q", "a", 9, 5), ("b", "a", 1, 1),
        labels={"a": 10, "b": 10, "c": 10, "q": 10},
    )  # fmt: skip
    return label_pair_stats(counts, {}, 5, 0.1, 0.7, isa_pairs(HAND_EDGES))


def test_label_pair_agreement_of_a_statistics_table() -> None:
    table = _hand_statistics()
    report = label_pair_agreement(table, HAND_EDGES, 5, 0.1)
    assert report["accepted_official_part"] == [["b", "c"]]
    # (q, a) passes both thresholds and is refused as is-a; (b, a) is is-a but too rare.
    assert report["isa_blocked"] == [["q", "a"]]
    assert label_pair_agreement(table, [], 5, 0.1) is None


def test_guard_state_says_whether_the_guard_ran() -> None:
    """DESIGN "Qualities": the is-a guard silently off must be visible (run.json's isa_guard)."""
    table = _hand_statistics()
    guarded = len(isa_pairs(HAND_EDGES))
    assert guard_state(table, "h.json", True, guarded, 5, 0.1) == {
        "state": "on",
        "hierarchy": "h.json",
        "isa_pairs": guarded,
        "blocked": 1,  # (q, a)
    }
    off = guard_state(table, None, False, 0, 5, 0.1)
    assert off == {"state": "off", "reason": guard_off_reason(None)}
    assert off["reason"].startswith("no hierarchy file") and "--hierarchy" in off["reason"]
    assert guard_state(table, "h.json", False, 0, 5, 0.1)["reason"] == "--isa_guard off"


def test_real_official_part_agreement(real) -> None:
    edges, _ = real
    accepted = [(PERSON, HUMAN_FACE), (WOMAN, HUMAN_FACE), (BICYCLE, BICYCLE_WHEEL)]
    report = official_part_agreement(accepted, edges)
    assert report["official_part_edges"] == 38  # as the fixture README says
    assert report["accepted_official_part"] == [[BICYCLE, BICYCLE_WHEEL], [PERSON, HUMAN_FACE]]
    assert report["accepted_new"] == [[WOMAN, HUMAN_FACE]]
    assert report["counts"]["official_not_accepted"] == 37


def test_synthetic_hierarchy_relations(tmp_path: Path) -> None:
    path = tmp_path / synth.HIERARCHY
    path.write_text(json.dumps(synth.hierarchy()))
    edges = input_files.read_hierarchy(str(path))
    ids = {label.name: label.label_id for label in synth.TAXONOMY}
    # The synthetic root is an is-a ancestor of every top-level label (of Desk and Coach through
    # Table and Bus); the true part-of tree is written as Part edges, so its transitive closure
    # is exactly the official part relations.
    top_level = {label.label_id for label in synth.TAXONOMY if label.parent is None}
    assert isa_pairs(edges) == (
        {(ids["Table"], ids["Desk"]), (ids["Bus"], ids["Coach"])}
        | {(synth.ROOT_LABEL, label) for label in top_level}
    )
    assert official_part_pairs(edges) == synth.true_part_of_pairs()
