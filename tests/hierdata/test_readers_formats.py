"""Input files as users have them: CR-only and CRLF line endings are read; compressed, binary
and too-deep files are one-line InputErrors, never tracebacks."""

import gzip
import json
from pathlib import Path

import pytest

from hierdata import input_files, readers
from hierdata.errors import InputError
from tests.hierdata.test_readers_chunks import HEADER, LINES, write_lines


@pytest.mark.parametrize("chunk_bytes", [23, 64, 1 << 20])
@pytest.mark.parametrize("final_newline", [True, False])
def test_cr_only_and_crlf_files_read_like_lf(
    tmp_path: Path, chunk_bytes: int, final_newline
) -> None:
    results = []
    for name, ending in (("lf", "\n"), ("cr", "\r"), ("crlf", "\r\n")):
        path = tmp_path / f"{name}.csv"
        write_lines(path, LINES * 2, ending, final_newline)
        rows, rejects = readers.read_boxes_file(str(path), "train", {"/m/1"}, chunk_bytes)
        results.append((rows.drop_columns("file"), rejects.drop_columns(["file", "raw"])))
    lf, cr, crlf = results
    assert lf[0].num_rows == 6 and lf[1].num_rows == 14
    for other in (cr, crlf):
        assert other[0].equals(lf[0]) and other[1].equals(lf[1])


def test_header_newline_is_detected(tmp_path: Path) -> None:
    for ending, newline in (("\n", b"\n"), ("\r\n", b"\n"), ("\r", b"\r")):
        path = tmp_path / "b.csv"
        write_lines(path, LINES[:2], ending, True)
        header = readers.read_header(str(path))
        assert header.newline == newline
        assert header.columns == tuple(HEADER.split(","))
        assert header.data_start == len(HEADER) + len(ending)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (gzip.compress((HEADER + "\n" + LINES[0] + "\n").encode()), "is gzip-compressed"),
        (b"PK\x03\x04" + bytes(100), "is a zip archive"),
        (b"ImageID\x00,LabelName\n", "not a text CSV"),
        (b'ImageID,"Label\rName,XMin\n', "missing required column"),
    ],
    ids=["gzip", "zip", "nul", "stray-cr"],
)
def test_compressed_or_binary_csv_is_one_input_error(tmp_path: Path, content, message) -> None:
    path = tmp_path / "validation-annotations-bbox.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        readers.read_header(str(path))
    assert "\n" not in str(caught.value)


def test_deeply_nested_hierarchy_is_an_input_error(tmp_path: Path) -> None:
    depth = 50_000
    text = '{"LabelName":"/m/a","Subcategory":[' * depth + '{"LabelName":"/m/b"}' + "]}" * depth
    path = tmp_path / "bbox_labels_600_hierarchy.json"
    path.write_text(text)
    with pytest.raises(InputError, match="nested deeper than the parser allows"):
        input_files.read_hierarchy(str(path))


def test_moderately_deep_hierarchy_is_read(tmp_path: Path) -> None:
    node: dict = {"LabelName": "/m/leaf"}
    for level in range(300):
        node = {"LabelName": f"/m/{level}", "Part": [node]}
    path = tmp_path / "h.json"
    path.write_text(json.dumps(node))
    assert len(input_files.read_hierarchy(str(path))) == 300


def test_head_image_ids_are_the_first_distinct_valid_ids(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    write_lines(path, LINES, "\r", True)
    header = readers.read_header(str(path))
    assert readers.head_image_ids(str(path), header, 3) == ["img1", "img2", "img3"]
    assert readers.head_image_ids(str(path), header, 100) == [
        "img1",
        "img2",
        "img3",
        "img4",
        "img5",
        "img6",
    ]
