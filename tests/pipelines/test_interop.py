"""Interop of the shards: display names in each sample's JSON (valid against its schema), and
the documented way to load them with Hugging Face `datasets`."""

import csv
import json
import shutil

import pytest

from hierdata.interop import SAMPLE_ROW, sample_rows, split_shards
from pipelines.build_hier_openimages import main
from schemas.sample import SAMPLE_METADATA


@pytest.fixture(scope="module")
def photo_shards(shared_data, tmp_path_factory) -> tuple[list[str], dict[str, str]]:
    """Shards of the 14 real photos; (validation shard URLs, class id -> display name)."""
    photos = shared_data / "openimages-photos"
    root = tmp_path_factory.mktemp("interop_in")
    descriptions = shared_data / "openimages-v4-meta" / "class-descriptions-boxable.csv"
    shutil.copy(photos / "boxes.csv", root / "validation-annotations-bbox.csv")
    shutil.copy(descriptions, root)
    out = tmp_path_factory.mktemp("interop_out")
    argv = ["--input", str(root), "--output", str(out),
            "--images", str(photos / "images" / "{image_id}.jpg"),
            "--min_box_area", "0", "--min_pair_frequency", "2",
            "--samples_per_shard", "5"]  # fmt: skip
    assert main(argv) == 0
    with open(descriptions, newline="") as handle:
        names = {row[0]: row[1] for row in csv.reader(handle)}
    return split_shards(str(out / "shards" / "validation")), names


def test_samples_carry_display_names_and_match_their_schema(photo_shards):
    jsonschema = pytest.importorskip("jsonschema")
    urls, names = photo_shards
    rows = list(sample_rows(urls))
    assert len(rows) == 14
    for row in rows:
        metadata = json.loads(row["metadata"])
        jsonschema.validate(metadata, SAMPLE_METADATA)
        assert metadata["label_names"] == [names[label] for label in metadata["labels"]]
        assert all(box["name"] == names[box["label"]] for box in metadata["boxes"])
        assert all(cross["name"] == names[cross["label"]] for cross in metadata["cross"])
    assert "Fish" in {name for row in rows for name in row["label_names"]}


def test_hugging_face_datasets_loads_the_shards_with_a_fixed_schema(photo_shards, tmp_path):
    datasets = pytest.importorskip("datasets")
    urls, _ = photo_shards
    dataset = datasets.Dataset.from_generator(
        sample_rows,
        gen_kwargs={"urls": urls},
        features=datasets.Features.from_arrow_schema(SAMPLE_ROW),
        cache_dir=str(tmp_path / "hf"),
    )
    assert dataset.num_rows == 14
    # samples with 2 to 73 crops live in one list column, not one column per tar member
    for row in dataset:
        metadata = json.loads(row["metadata"])
        keys = [c["key"] for c in row["crops"]]
        assert keys == sorted(
            [b["key"] for b in metadata["boxes"]] + [c["key"] for c in metadata["cross"]]
        )
        assert all(c["jpeg"][:2] == b"\xff\xd8" for c in row["crops"])
        assert row["image"][:2] == b"\xff\xd8"
    counts = {len(row["crops"]) for row in dataset}
    assert len(counts) > 1  # really different numbers of crops per sample
