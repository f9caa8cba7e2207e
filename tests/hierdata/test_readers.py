"""Tests of the Open Images readers on the real fixtures in ../shared/data and on tiny files.

Covers discovery (local and memory://), class descriptions, the hierarchy, headers; chunking is
in test_readers_chunks.py.
"""

import uuid
from pathlib import Path

import fsspec
import pyarrow.compute as pc
import pytest

from hierdata import input_files, io, readers
from hierdata.errors import InputError
from schemas.tables import REJECTS, ROWS
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA
V3 = DATA / "openimages-v3-head"
V4_META = DATA / "openimages-v4-meta"
V4_SAMPLED = DATA / "openimages-v4-sampled"
V4_CRLF = DATA / "openimages-v4-crlf"
PHOTOS = DATA / "openimages-photos"

needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real Open Images fixtures not found at {DATA}"
)
HEADER = "ImageID,LabelName,XMin,XMax,YMin,YMax"
FLAG_FIELDS = ("is_occluded", "is_truncated", "is_group_of", "is_depiction", "is_inside")


def physical_lines(path: Path) -> int:
    """Lines in a file: newlines, plus one for a last line without a newline."""
    data = path.read_bytes()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def v4_labels() -> dict[str, str]:
    return input_files.read_class_descriptions(str(V4_META / "class-descriptions-boxable.csv"))


def v3_labels() -> dict[str, str]:
    return input_files.read_class_descriptions(str(V3 / "class-descriptions.csv"))


def bbox_fixtures() -> list[tuple[Path, str]]:
    return [
        (V3 / "train-annotations-bbox.csv", "v3"),
        (V3 / "validation-annotations-bbox.csv", "v3"),
        (V3 / "test-annotations-bbox.csv", "v3"),
        (V4_SAMPLED / "train-annotations-bbox.csv", "v4"),
        (V4_SAMPLED / "test-annotations-bbox.csv", "v4"),
        (V4_CRLF / "validation-annotations-bbox.csv", "v4"),
        (PHOTOS / "boxes.csv", "v4"),
    ]


# Real files -------------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize(("path", "labels"), bbox_fixtures(), ids=lambda v: str(v)[-40:])
def test_every_line_of_a_real_file_is_a_row_or_a_reject(path, labels):
    known = v3_labels() if labels == "v3" else v4_labels()
    rows, rejects = readers.read_boxes_file(str(path), "validation", known)
    lines = physical_lines(path)
    assert rows.num_rows + rejects.num_rows == lines - 1
    assert sorted(rows["line"].to_pylist() + rejects["line"].to_pylist()) == list(
        range(2, lines + 1)
    )
    assert rejects.num_rows == 0
    assert rows.schema.equals(ROWS) and rejects.schema.equals(REJECTS)
    assert set(rows["file"].to_pylist()) == {path.name}


@needs_data
def test_v3_train_has_eight_columns_and_its_flags_read_unknown():
    path = V3 / "train-annotations-bbox.csv"
    assert len(readers.read_header(str(path)).columns) == 8
    rows, _ = readers.read_boxes_file(str(path), "train", v3_labels())
    for field in FLAG_FIELDS:
        assert set(rows[field].to_pylist()) == {-1}
    first = rows.to_pylist()[0]
    assert (first["image_id"], first["source"], first["label"]) == (
        "000002b66c9c498e",
        "activemil",
        "/m/0284d",
    )
    assert (first["confidence"], first["xmin"], first["ymax"], first["line"]) == (
        1.0,
        0.560250,
        1.0,
        2,
    )
    assert set(rows["source"].to_pylist()) == {"activemil", "verification", "xclick"}


@needs_data
@pytest.mark.parametrize(("split", "images"), [("validation", 175), ("test", 119)])
def test_v3_validation_and_test_have_thirteen_columns_and_real_flags(split, images):
    path = V3 / f"{split}-annotations-bbox.csv"
    assert len(readers.read_header(str(path)).columns) == 13
    rows, _ = readers.read_boxes_file(str(path), split, v3_labels())
    assert pc.count_distinct(rows["image_id"]).as_py() == images
    for field in FLAG_FIELDS:
        assert set(rows[field].to_pylist()) <= {0, 1}
    assert set(rows["split"].to_pylist()) == {split}


@needs_data
def test_v3_class_descriptions_without_header_with_quoted_names():
    names = v3_labels()
    assert len(names) == 19_995
    assert names["/m/0100nhbf"] == "Sprenger's tulip"  # the first line is data, not a header
    assert names["/m/01c_0l"] == "Ducks, geese and swans"
    assert names["/m/02wvth"] == 'Fiat 500 "topolino"'
    assert names["/m/0zvk5"] == "Helmet"  # last line, CRLF stripped


@needs_data
def test_v4_sampled_keeps_pandas_floats_and_skips_the_class_header():
    names = input_files.read_class_descriptions(str(V4_SAMPLED / "class-descriptions-boxable.csv"))
    assert "label" not in names
    assert names["/m/031n1"] == "Human foot" and len(names) == 6
    rows, _ = readers.read_boxes_file(
        str(V4_SAMPLED / "train-annotations-bbox.csv"), "train", names
    )
    assert rows.num_rows == 13_134
    assert rows["xmax"][0].as_py() == 0.4345020000000001
    assert rows["ymax"][1].as_py() == 0.6510319999999999


@needs_data
def test_v4_crlf_file_reads_like_lf():
    rows, rejects = readers.read_boxes_file(
        str(V4_CRLF / "validation-annotations-bbox.csv"), "validation", v4_labels()
    )
    assert (rows.num_rows, rejects.num_rows) == (1955, 0)
    # The last column would fail the flag rule if the "\r" were kept.
    assert set(rows["is_inside"].to_pylist()) <= {0, 1}
    assert pc.sum(pc.equal(rows["is_group_of"], 1)).as_py() == 406
    assert pc.count_distinct(rows["image_id"]).as_py() == 456


@needs_data
def test_minimal_six_column_file_has_null_source_and_unknown_flags():
    rows, _ = readers.read_boxes_file(str(PHOTOS / "boxes.csv"), "train", v4_labels())
    assert rows.num_rows == 302
    assert pc.count_distinct(rows["image_id"]).as_py() == 14
    assert rows["source"].null_count == rows["confidence"].null_count == 302
    assert set(rows["is_group_of"].to_pylist()) == {-1}


@needs_data
def test_hierarchy_edges_part_count_and_file_order():
    edges = input_files.read_hierarchy(str(V4_META / "bbox_labels_600_hierarchy.json"))
    assert len(edges) == len(set(edges))
    assert sum(relation == "Part" for *_, relation in edges) == 38
    assert ("/m/0138tl", "/m/0167gd", "Subcategory") in edges  # Toy -> Doll
    assert ("/m/0199g", "/m/01bqk0", "Part") in edges  # Bicycle -> Bicycle wheel
    # Depth-first as in the file: Entity's fourth child (Toy) is followed by Toy's subtree.
    assert edges[3:5] == [
        ("/m/0bl9f", "/m/0138tl", "Subcategory"),
        ("/m/0138tl", "/m/0167gd", "Subcategory"),
    ]


@needs_data
def test_find_inputs_on_the_fixture_folders():
    v3 = input_files.find_inputs(str(V3))
    assert list(v3.bbox) == ["train", "validation", "test"]
    assert v3.bbox["test"] == str(V3 / "test-annotations-bbox.csv")
    assert v3.class_descriptions == str(V3 / "class-descriptions.csv")
    assert v3.hierarchy is None
    sampled = input_files.find_inputs(str(V4_SAMPLED))
    assert list(sampled.bbox) == ["train", "test"]
    assert sampled.class_descriptions == str(V4_SAMPLED / "class-descriptions-boxable.csv")
    with pytest.raises(InputError, match="no bbox annotation file"):
        input_files.find_inputs(str(V4_META))


# Discovery and metadata on tiny files -----------------------------------------------------


def test_find_inputs_prefers_official_names_in_order(tmp_path):
    for name in (
        "test-annotations-bbox.csv",
        "train-annotations-bbox.csv",
        "oidv6-train-annotations-bbox.csv",
        "validation-annotations-bbox.csv",
        "class-descriptions.csv",
        "oidv7-class-descriptions-boxable.csv",
        "bbox_labels_600_hierarchy.json",
    ):
        (tmp_path / name).write_text(HEADER + "\n")
    found = input_files.find_inputs(str(tmp_path))
    assert list(found.bbox) == ["train", "validation", "test"]
    assert found.bbox["train"] == str(tmp_path / "oidv6-train-annotations-bbox.csv")
    assert found.class_descriptions == str(tmp_path / "oidv7-class-descriptions-boxable.csv")
    assert found.hierarchy == str(tmp_path / "bbox_labels_600_hierarchy.json")


@pytest.fixture
def memory_root():
    root = f"memory://hier-readers-{uuid.uuid4().hex}"
    yield root
    io.remove_tree(root)


def test_find_inputs_and_read_on_memory_filesystem(memory_root):
    io.write_bytes(
        f"{memory_root}/validation-annotations-bbox.csv", f"{HEADER}\na,/m/1,0,1,0,1\n".encode()
    )
    io.write_bytes(f"{memory_root}/class-descriptions-boxable.csv", b"/m/1,One\n")
    found = input_files.find_inputs(memory_root)
    assert found.bbox == {"validation": f"{memory_root}/validation-annotations-bbox.csv"}
    names = input_files.read_class_descriptions(found.class_descriptions)
    assert names == {"/m/1": "One"}
    rows, _ = readers.read_boxes_file(found.bbox["validation"], "validation", names)
    assert rows["image_id"].to_pylist() == ["a"]
    assert fsspec.filesystem("memory").exists(memory_root.removeprefix("memory://"))


def test_find_inputs_on_missing_root_or_a_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        input_files.find_inputs(str(tmp_path / "nope"))
    (tmp_path / "f.csv").write_text(HEADER + "\n")
    with pytest.raises(InputError, match="not a folder"):
        input_files.find_inputs(str(tmp_path / "f.csv"))


@pytest.mark.parametrize(
    "text",
    [
        'LabelName,DisplayName\r\n/m/1,One\r\n/m/2,"Two, too"\r\n',
        '\ufefflabel,name\n/m/1,One\n/m/2,"Two, too"\n',
        '/m/1,One\n/m/2,"Two, too"',
    ],
)
def test_class_descriptions_with_or_without_header(tmp_path, text):
    path = tmp_path / "class-descriptions.csv"
    path.write_bytes(text.encode())
    assert input_files.read_class_descriptions(str(path)) == {"/m/1": "One", "/m/2": "Two, too"}


def test_class_descriptions_missing_or_empty_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        input_files.read_class_descriptions(str(tmp_path / "nope.csv"))
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        input_files.read_class_descriptions(str(tmp_path / "empty.csv"))


def test_hierarchy_invalid_json_is_an_input_error(tmp_path):
    (tmp_path / "h.json").write_text('{"LabelName": "/m/0", "Subcategory": [')
    with pytest.raises(InputError, match="invalid hierarchy JSON"):
        input_files.read_hierarchy(str(tmp_path / "h.json"))


def test_hierarchy_repeated_edges_keep_first_position(tmp_path):
    (tmp_path / "h.json").write_text(
        '{"LabelName": "/r", "Subcategory": [{"LabelName": "/a", "Part": [{"LabelName": "/p"}]},'
        ' {"LabelName": "/b", "Part": [{"LabelName": "/p"}]}, {"LabelName": "/a",'
        ' "Part": [{"LabelName": "/p"}]}]}'
    )
    assert input_files.read_hierarchy(str(tmp_path / "h.json")) == [
        ("/r", "/a", "Subcategory"),
        ("/a", "/p", "Part"),
        ("/r", "/b", "Subcategory"),
        ("/b", "/p", "Part"),
    ]


# Headers ----------------------------------------------------------------------------------


def test_empty_file_is_an_input_error(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        readers.read_header(str(tmp_path / "b.csv"))


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_header_only_file_gives_no_rows(tmp_path, ending):
    path = tmp_path / "b.csv"
    path.write_bytes(("\ufeff" + HEADER + ending).encode())
    header = readers.read_header(str(path))
    assert header.columns == tuple(HEADER.split(","))
    assert header.data_start == path.stat().st_size
    chunks = readers.plan_chunks(str(path), "train", header)
    assert len(chunks) == 1 and readers.count_lines(chunks[0]) == 0
    rows, rejects = readers.read_boxes_file(str(path), "train", {"/m/1"})
    assert rows.num_rows == rejects.num_rows == 0


def test_missing_required_column_is_named(tmp_path):
    (tmp_path / "b.csv").write_text("ImageID,LabelName,XMin,YMax\na,/m/1,0,1\n")
    with pytest.raises(InputError, match="missing required column.*XMax, YMin"):
        readers.read_header(str(tmp_path / "b.csv"))


def test_missing_bbox_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        readers.read_boxes_file(str(tmp_path / "nope.csv"), "train", {"/m/1"})
