"""Tests of the DESIGN "Boxes" rule: one test per reject reason, their priority, clipping, flags.

Each case is a tiny bbox CSV written to tmp_path and read through readers.read_boxes_file.
"""

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierdata import boxes
from hierdata.readers import read_boxes_file

HEADER = (
    "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,"
    "IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"
)
GOOD = "img1,xclick,/m/a,1,0.1,0.5,0.2,0.6,0,1,0,0,0"
LABELS = {"/m/a", "/m/b"}
FILE = "validation-annotations-bbox.csv"


def read(tmp_path, *lines, header=HEADER, ending="\n"):
    path = tmp_path / FILE
    path.write_bytes((ending.join([header, *lines]) + ending).encode())
    return read_boxes_file(str(path), "validation", LABELS)


def only_reject(tmp_path, bad_line: str, ending: str = "\n") -> dict:
    """Read GOOD, bad_line, GOOD: the good lines 2 and 4 are rows, line 3 the one reject."""
    rows, rejects = read(tmp_path, GOOD, bad_line, GOOD, ending=ending)
    assert rows["line"].to_pylist() == [2, 4]
    assert rejects.num_rows == 1
    reject = rejects.to_pylist()[0]
    assert (reject["split"], reject["file"], reject["line"]) == ("validation", FILE, 3)
    assert reject["raw"] == bad_line
    return reject


def good_with(**changes: str) -> str:
    fields = dict(zip(HEADER.split(","), GOOD.split(","), strict=True))
    fields.update(changes)
    return ",".join(fields.values())


@pytest.mark.parametrize("line", ["", "   ", "\t "])
def test_reject_empty_line(tmp_path, line):
    assert only_reject(tmp_path, line)["reason"] == "empty_line"


@pytest.mark.parametrize("line", ["img1,xclick,/m/a,1,0.1,0.5", GOOD + ",0", GOOD + ","])
def test_reject_column_count(tmp_path, line):
    assert only_reject(tmp_path, line)["reason"] == "column_count"


@pytest.mark.parametrize("image_id", ["../x", "a.b", "a b", "a/b", "", "x" * 129, "é"])
def test_reject_bad_image_id(tmp_path, image_id):
    assert only_reject(tmp_path, good_with(ImageID=image_id))["reason"] == "bad_image_id"


def test_image_id_of_128_safe_characters_is_kept(tmp_path):
    image_id = ("aZ09_-" * 22)[:128]
    rows, rejects = read(tmp_path, good_with(ImageID=image_id))
    assert rows["image_id"].to_pylist() == [image_id]
    assert rejects.num_rows == 0


def test_reject_unknown_label(tmp_path):
    assert only_reject(tmp_path, good_with(LabelName="/m/zzz"))["reason"] == "unknown_label"


@pytest.mark.parametrize(
    "changes",
    [
        {"XMin": "abc"},
        {"XMax": ""},
        {"YMin": "nan"},
        {"YMax": "inf"},
        {"XMax": "1e999"},
        {"XMin": " 0.1"},
        {"XMin": "0x1"},
        {"Confidence": "high"},
    ],
)
def test_reject_bad_number(tmp_path, changes):
    assert only_reject(tmp_path, good_with(**changes))["reason"] == "bad_number"


@pytest.mark.parametrize("flag", ["2", "-2", "yes", "0.5", " 1"])
def test_reject_bad_flag(tmp_path, flag):
    assert only_reject(tmp_path, good_with(IsGroupOf=flag))["reason"] == "bad_flag"


@pytest.mark.parametrize(
    "changes", [{"XMin": "-0.01"}, {"XMax": "1.0000011"}, {"YMin": "-0.0000011"}, {"YMax": "2"}]
)
def test_reject_out_of_range(tmp_path, changes):
    assert only_reject(tmp_path, good_with(**changes))["reason"] == "out_of_range"


@pytest.mark.parametrize(
    "changes",
    [
        {"XMin": "0.5", "XMax": "0.5"},
        {"YMin": "0.7", "YMax": "0.6"},
        # Both clip to 1.0: empty after clipping although XMin < XMax as written.
        {"XMin": "1.0000005", "XMax": "1.0000008"},
    ],
)
def test_reject_empty_box(tmp_path, changes):
    assert only_reject(tmp_path, good_with(**changes))["reason"] == "empty_box"


def test_coordinates_within_tolerance_are_clipped(tmp_path):
    line = good_with(XMin="-0.000001", XMax="1.0000005", YMin="-1e-7", YMax="1.000001")
    rows, rejects = read(tmp_path, line)
    assert rejects.num_rows == 0
    row = rows.to_pylist()[0]
    assert (row["xmin"], row["xmax"], row["ymin"], row["ymax"]) == (0.0, 1.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        # Each line also breaks every rule after its reason.
        ("../x,xclick,/m/zzz,1,0.1", "column_count"),
        ("../x,xclick,/m/zzz,1,abc,0.5,0.2,0.6,7,0,0,0,0", "bad_image_id"),
        ("img1,xclick,/m/zzz,1,abc,0.5,0.2,0.6,7,0,0,0,0", "unknown_label"),
        ("img1,xclick,/m/a,1,abc,0.5,0.2,0.6,7,0,0,0,0", "bad_number"),
        ("img1,xclick,/m/a,1,2,0.5,0.2,0.6,7,0,0,0,0", "bad_flag"),
        ("img1,xclick,/m/a,1,2,0.5,0.2,0.6,0,0,0,0,0", "out_of_range"),
    ],
)
def test_reject_reason_is_the_first_in_priority_order(tmp_path, line, reason):
    assert only_reject(tmp_path, line)["reason"] == reason


def test_reject_priority_orders_every_reason_once():
    assert sorted(boxes.REJECT_PRIORITY) == sorted(boxes.REJECT_REASONS)


def test_missing_flag_columns_read_unknown_not_false(tmp_path):
    rows, _ = read(
        tmp_path,
        "img1,xclick,/m/a,1,0.1,0.5,0.2,0.6",
        header="ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax",
    )
    for field in boxes.FLAGS.values():
        assert rows[field].to_pylist() == [-1]


def test_empty_flag_reads_unknown_and_pandas_float_flag_reads_its_value(tmp_path):
    rows, rejects = read(tmp_path, good_with(IsOccluded="", IsGroupOf="1.0", IsInside="-1"))
    assert rejects.num_rows == 0
    row = rows.to_pylist()[0]
    assert (row["is_occluded"], row["is_truncated"], row["is_group_of"]) == (-1, 1, 1)
    assert row["is_inside"] == -1


def test_missing_source_and_confidence_read_null(tmp_path):
    rows, _ = read(
        tmp_path, "img1,/m/a,0.1,0.5,0.2,0.6", header="ImageID,LabelName,XMin,XMax,YMin,YMax"
    )
    row = rows.to_pylist()[0]
    assert row["source"] is None and row["confidence"] is None
    assert rows.schema.equals(boxes.ROWS)


def test_empty_confidence_reads_null(tmp_path):
    rows, rejects = read(tmp_path, good_with(Confidence=""), good_with(Confidence="0.25"))
    assert rejects.num_rows == 0
    assert rows["confidence"].to_pylist() == [None, 0.25]


def test_columns_are_found_by_name_in_any_order_and_extra_columns_ignored(tmp_path):
    rows, _ = read(
        tmp_path,
        "0.6,0.2,0.5,0.1,/m/b,extra,img9",
        header="YMax,YMin,XMax,XMin,LabelName,Comment,ImageID",
    )
    row = rows.to_pylist()[0]
    assert (row["image_id"], row["label"]) == ("img9", "/m/b")
    assert (row["xmin"], row["xmax"], row["ymin"], row["ymax"]) == (0.1, 0.5, 0.2, 0.6)


def test_quoted_fields_take_the_csv_path(tmp_path):
    quoted = '"img2","x,click","/m/b","1","0.1","0.5","0.2","0.6","0","0","1","0","0"'
    rows, rejects = read(tmp_path, GOOD, quoted, 'img3,"a,b",/m/a,1,0.1')
    assert rows.to_pylist()[1]["image_id"] == "img2"
    assert rows.to_pylist()[1]["source"] == "x,click"
    assert rows["is_group_of"].to_pylist() == [0, 1]
    assert rejects.to_pylist()[0]["reason"] == "column_count"
    assert rejects.to_pylist()[0]["line"] == 4


def test_crlf_reject_raw_has_no_line_ending(tmp_path):
    reject = only_reject(tmp_path, good_with(LabelName="/m/zzz"), ending="\r\n")
    assert reject["reason"] == "unknown_label"


def test_invalid_utf8_is_replaced_in_raw(tmp_path):
    path = tmp_path / FILE
    path.write_bytes(
        f"{HEADER}\n{GOOD}\n".encode() + b"im\xffg,xclick,/m/a,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n"
    )
    rows, rejects = read_boxes_file(str(path), "validation", LABELS)
    assert rows.num_rows == 1
    assert rejects.to_pylist()[0]["reason"] == "bad_image_id"
    assert rejects.to_pylist()[0]["raw"].startswith("im\ufffdg,")


def test_out_of_range_bound_is_inclusive():
    coordinates = np.array([[-1e-6, 1 + 1e-6, 0.0, 1.0], [-2e-6, 0.5, 0.1, 0.2]])
    assert boxes.out_of_range(coordinates).tolist() == [False, True]


def test_parse_flags_of_missing_column_is_unknown():
    values, bad = boxes.parse_flags(None, 3)
    assert values.tolist() == [-1, -1, -1] and not bad.any()


NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789.eE+-_ xn", max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(NUMBER_TEXT, min_size=1, max_size=20))
def test_parse_numbers_flags_exactly_the_unparseable_text(texts):
    values, bad = boxes.parse_numbers(pa.array(texts, pa.large_string()))
    for text, value, flagged in zip(texts, values, bad, strict=True):
        # The same text alone takes the fast path when it parses: both paths must agree.
        alone_values, alone_bad = boxes.parse_numbers(pa.array([text], pa.large_string()))
        assert alone_bad[0] == flagged
        try:
            expected = float(text)
        except ValueError:
            expected = math.nan
        parses = math.isfinite(expected) and text == text.strip() and "_" not in text
        assert flagged == (not parses)
        if parses:
            assert value == expected == alone_values[0]
