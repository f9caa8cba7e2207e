"""Tests of hierdata.synth: file formats, determinism, the truth set and each adversarial piece.

Geometry checks read the written CSV back, so they test what a miner would see.
"""

import csv
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hierdata import io, synth

HEX_ID = re.compile(r"[0-9a-f]{16}")
SIX_DECIMALS = re.compile(r"(0|1)\.[0-9]{6}")
ID = {label.name: label.label_id for label in synth.TAXONOMY}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth")
    return root, synth.write_synthetic_dataset(str(root))


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as f:
        header, *rows = csv.reader(f)
    return header, rows


def is_valid(row: list[str], labels: set[str]) -> bool:
    """The DESIGN "Boxes" rule, restricted to what the generator can break."""
    if len(row) != len(synth.BBOX_COLUMNS) or not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", row[0]):
        return False
    try:
        xmin, xmax, ymin, ymax = map(float, row[4:8])
    except ValueError:
        return False
    return row[2] in labels and 0 <= xmin < xmax <= 1 and 0 <= ymin < ymax <= 1


def train_boxes(root: Path) -> pl.DataFrame:
    """Valid train rows with area; the malformed ones dropped."""
    _, rows = read_rows(root / "train-annotations-bbox.csv")
    valid = [r for r in rows if is_valid(r, set(ID.values()))]
    frame = pl.DataFrame(
        {
            "image": [r[0] for r in valid],
            "label": [r[2] for r in valid],
            **{c: [float(r[i]) for r in valid] for i, c in enumerate(("x0", "x1", "y0", "y1"), 4)},
            "group": [int(r[10]) for r in valid],
        }
    ).with_row_index("box")
    return frame.with_columns(area=(pl.col("x1") - pl.col("x0")) * (pl.col("y1") - pl.col("y0")))


def box_pairs(boxes: pl.DataFrame, parent: str, child: str) -> pl.DataFrame:
    """Every (parent box, child box) of the same image with the child's containment and IoU."""
    p = boxes.filter(pl.col("label") == ID[parent])
    c = boxes.filter(pl.col("label") == ID[child])
    pairs = p.join(c, on="image", suffix="_c")
    ix = (pl.min_horizontal("x1", "x1_c") - pl.max_horizontal("x0", "x0_c")).clip(0)
    iy = (pl.min_horizontal("y1", "y1_c") - pl.max_horizontal("y0", "y0_c")).clip(0)
    inter = ix * iy
    return pairs.with_columns(
        containment=inter / pl.col("area_c"),
        iou=inter / (pl.col("area") + pl.col("area_c") - inter),
    )


@pytest.fixture(scope="module")
def boxes(dataset) -> pl.DataFrame:
    return train_boxes(dataset[0])


def test_same_seed_gives_identical_bytes_and_another_seed_differs(dataset, tmp_path):
    root, _ = dataset
    again = synth.write_synthetic_dataset(str(tmp_path / "again"))
    other = synth.write_synthetic_dataset(str(tmp_path / "other"), seed=1)
    names = sorted(p.name for p in root.iterdir())
    assert len(names) == 5
    for name in names:
        assert (tmp_path / "again" / name).read_bytes() == (root / name).read_bytes(), name
    assert again["splits"] == {
        s: {**v, "path": v["path"].replace(str(root), str(tmp_path / "again"))}
        for s, v in dataset[1]["splits"].items()
    }
    csv_name = "train-annotations-bbox.csv"
    assert (tmp_path / "other" / csv_name).read_bytes() != (root / csv_name).read_bytes()
    assert other["splits"]["train"]["boxes"] != dataset[1]["splits"]["train"]["boxes"]


def test_bbox_files_parse_with_the_v4_header_sorted_ids_and_six_decimals(dataset):
    root, summary = dataset
    labels = set(ID.values())
    all_ids = set()
    for split, n_images in synth.DEFAULT_IMAGES_PER_SPLIT.items():
        header, rows = read_rows(root / f"{split}-annotations-bbox.csv")
        assert header == synth.BBOX_COLUMNS and len(header) == 13
        valid = [r for r in rows if is_valid(r, labels)]
        ids = {r[0] for r in valid}
        assert all(HEX_ID.fullmatch(i) for i in ids)
        assert len(ids) == n_images == summary["splits"][split]["images"]
        assert all(SIX_DECIMALS.fullmatch(v) for r in valid for v in r[4:8])
        assert all(r[1] == "xclick" and r[3] == "1" for r in valid)
        assert {r[10] for r in valid} == {"0", "1"}  # IsGroupOf
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)  # like the official files
        assert len(valid) == summary["splits"][split]["boxes"]
        assert not ids & all_ids  # ImageIDs are unique across splits
        all_ids |= ids


def test_reject_rule_malformed_rows_match_the_summary(dataset):
    root, summary = dataset
    for split, counts in summary["splits"].items():
        _, rows = read_rows(root / f"{split}-annotations-bbox.csv")
        bad = [r for r in rows if not is_valid(r, set(ID.values()))]
        assert len(bad) == counts["malformed_rows"] == len(synth.MALFORMED_ROWS)
        assert len(bad) <= 0.01 * len(rows)  # under the default --max_reject_fraction
        assert {r[0] for r in bad} & {"../etc"}
        assert sum(len(r) != 13 for r in bad) == 1
        assert sum(r[2] == "/m/syn_unknown" for r in bad) == 1


def test_reject_rule_tiny_split_stays_under_max_reject_fraction(tmp_path):
    summary = synth.write_synthetic_dataset(str(tmp_path), {"validation": 10}, seed=3)
    assert summary["splits"]["validation"]["malformed_rows"] == 0
    assert [p.name for p in tmp_path.glob("*-annotations-bbox.csv")] == [
        "validation-annotations-bbox.csv"
    ]


def test_class_descriptions_and_hierarchy_use_the_official_formats(dataset):
    root, _ = dataset
    lines = (root / "class-descriptions-boxable.csv").read_text().splitlines()
    assert lines == sorted(f"{label.label_id},{label.name}" for label in synth.TAXONOMY)
    tree = json.loads((root / "bbox_labels_600_hierarchy.json").read_text())
    assert tree["LabelName"] == synth.ROOT_LABEL and "Subcategory" in tree
    assert all(re.fullmatch(r"/m/syn_[a-z_]+", label.label_id) for label in synth.TAXONOMY)
    assert 15 <= len(synth.TAXONOMY) <= 25


def test_hierarchy_keys_are_those_of_the_official_file(dataset, shared_data):
    def keys(node: dict) -> set[str]:
        children = node.get("Subcategory", []) + node.get("Part", [])
        return set(node).union(*(keys(child) for child in children))

    official = json.loads(
        (shared_data / "openimages-v4-meta" / "bbox_labels_600_hierarchy.json").read_text()
    )
    ours = json.loads((dataset[0] / "bbox_labels_600_hierarchy.json").read_text())
    assert keys(ours) == keys(official) == {"LabelName", "Subcategory", "Part"}


def hierarchy_edges(node: dict, relation: str) -> set[tuple[str, str]]:
    edges = set()
    for rel in ("Subcategory", "Part"):
        for child in node.get(rel, []):
            if rel == relation:
                edges.add((node["LabelName"], child["LabelName"]))
            edges |= hierarchy_edges(child, relation)
    return edges


def test_true_part_of_pairs_are_the_closure_of_the_part_edges(dataset):
    tree = json.loads((dataset[0] / "bbox_labels_600_hierarchy.json").read_text())
    closure = hierarchy_edges(tree, "Part")
    while True:
        longer = {(a, d) for a, b in closure for c, d in closure if b == c} | closure
        if longer == closure:
            break
        closure = longer
    assert synth.true_part_of_pairs() == frozenset(closure)
    assert (ID["Car"], ID["Hubcap"]) in closure  # transitive: hubcap in wheel in car
    assert len(closure) == 15
    isa = hierarchy_edges(tree, "Subcategory")
    assert {(ID["Table"], ID["Desk"]), (ID["Bus"], ID["Coach"])} <= isa
    assert not {(a, b) for a, b in isa if a != synth.ROOT_LABEL} & closure


@pytest.mark.parametrize("pair", sorted(synth.true_part_of_pairs()))
def test_containment_true_relations_nest_in_the_data(boxes, pair):
    names = {v: k for k, v in ID.items()}
    pairs = box_pairs(boxes, names[pair[0]], names[pair[1]])
    inside = pairs.filter(
        (pl.col("containment") >= 0.999) & (pl.col("iou") < 0.9) & (pl.col("group_c") == 0)
    )
    parents = boxes.filter(pl.col("label") == pair[0]).height
    assert inside.height >= 100
    assert inside["box"].n_unique() >= 0.5 * parents
    # Every nested child counts: big enough for the default --min_box_area.
    assert (inside["area_c"] >= 0.01).mean() >= 0.97


def test_min_box_area_lug_nuts_are_inside_hubcaps_and_always_dropped(boxes):
    inside = box_pairs(boxes, "Hubcap", "Lug nut").filter(pl.col("containment") >= 0.999)
    assert inside.height >= 50
    assert inside["area_c"].max() < 0.01


@pytest.mark.parametrize(
    "label, synonym", [("Table", "Desk"), ("Table", "Tablecloth"), ("Bus", "Coach")]
)
def test_duplicate_iou_synonyms_duplicate_their_object(boxes, label, synonym):
    pairs = box_pairs(boxes, label, synonym).filter(pl.col("iou") >= 0.9)
    assert pairs.height >= 50
    assert pairs["iou"].min() >= 0.92
    # Mostly larger than the object, so (synonym, object) would pass without the rule.
    assert (pairs["area_c"] > pairs["area"]).sum() >= 50


def test_group_children_person_groups_sit_inside_buses(boxes):
    groups = boxes.filter(pl.col("group") == 1)
    assert set(groups["label"]) == {ID["Person"]}
    inside = box_pairs(boxes, "Bus", "Person").filter(
        (pl.col("group_c") == 1) & (pl.col("containment") >= 0.999)
    )
    assert inside.height >= 100
    assert inside["box"].n_unique() >= 0.5 * boxes.filter(pl.col("label") == ID["Bus"]).height


def test_containment_flags_are_only_partly_inside_houses(boxes):
    flags = box_pairs(boxes, "House", "Flag")["containment"]
    assert flags.is_between(0.5 - 1e-4, 0.7 + 1e-4).sum() >= 100
    # Only random distractor flags reach the default containment.
    houses = boxes.filter(pl.col("label") == ID["House"]).height
    assert (flags >= 0.8).sum() < 0.05 * houses


def test_min_pair_proportion_birds_are_in_few_houses(boxes):
    birds = box_pairs(boxes, "House", "Bird").filter(pl.col("containment") >= 0.999)
    houses = boxes.filter(pl.col("label") == ID["House"]).height
    assert birds.height >= 60
    assert birds["box"].n_unique() < 0.08 * houses


def test_min_pair_frequency_aquariums_are_rare_and_always_hold_a_fish(boxes):
    fish = box_pairs(boxes, "Aquarium", "Fish").filter(pl.col("containment") >= 0.999)
    assert 20 <= fish.height < 40
    assert fish["box"].n_unique() >= 0.25 * boxes.filter(pl.col("label") == ID["Aquarium"]).height


def test_writes_to_fsspec_urls():
    summary = synth.write_synthetic_dataset("memory://synth-test", {"test": 50}, seed=2)
    data = io.read_bytes(summary["splits"]["test"]["path"])
    assert data.startswith(b"ImageID,Source,LabelName,") and data.count(b"\n") > 50
    assert json.loads(io.read_bytes(summary["hierarchy"]))["LabelName"] == synth.ROOT_LABEL
    io.remove_tree("memory://synth-test")


@pytest.mark.parametrize(
    "sizes, seed", [({"../train": 5}, 0), ({"train": -1}, 0), ({"train": 5}, -1)]
)
def test_bad_arguments_raise(tmp_path, sizes, seed):
    with pytest.raises(ValueError, match="seed >= 0"):
        synth.write_synthetic_dataset(str(tmp_path), sizes, seed)
    assert not any(tmp_path.iterdir())


def test_generate_split_matches_the_written_rows(dataset):
    ann = synth.generate_split("validation", 200)
    _, rows = read_rows(dataset[0] / "validation-annotations-bbox.csv")
    valid = [r for r in rows if is_valid(r, set(ID.values()))]
    assert len(valid) == len(ann.image)
    np.testing.assert_array_equal(np.array([[float(v) for v in r[4:8]] for r in valid]), ann.boxes)
    assert set(ann.scenes) <= set(synth.SCENES)
