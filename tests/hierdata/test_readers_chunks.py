"""Chunked reading of bbox CSVs: byte ranges, line counts and line numbers never change rows."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierdata import io, readers

HEADER = "ImageID,LabelName,XMin,XMax,YMin,YMax"

LINES = [
    "img1,/m/1,0.1,0.5,0.2,0.6",
    "img2,/m/1,0.0,1.0,0.0,1.0",
    "img2,/m/2,0.3,0.4,0.3,0.4",
    "../x,/m/1,0.1,0.5,0.2,0.6",
    "img3,/m/1,0.5,0.5,0.2,0.6",
    "img3,/m/1,abc,0.5,0.2,0.6",
    "img4,/m/1,0.1",
    "",
    '"img5","/m/1","0.1","0.5","0.2","0.6"',
    "img6," + "x" * 150 + ",0.1,0.5,0.2,0.6",
]


def write_lines(path: Path, lines: list[str], ending: str, final_newline: bool) -> None:
    text = ending.join([HEADER, *lines]) + (ending if final_newline else "")
    path.write_bytes(text.encode())


def test_tiny_and_huge_chunks_give_identical_rows_and_line_numbers(tmp_path):
    path = tmp_path / "b.csv"
    write_lines(path, LINES * 3, "\n", True)
    huge = readers.read_boxes_file(str(path), "train", {"/m/1"}, chunk_bytes=1 << 30)
    tiny = readers.read_boxes_file(str(path), "train", {"/m/1"}, chunk_bytes=37)
    assert huge[0].equals(tiny[0]) and huge[1].equals(tiny[1])
    assert huge[0].num_rows == 3 * 3  # img1, img2 (/m/1) and img5 in each copy
    assert sorted(huge[0]["line"].to_pylist() + huge[1]["line"].to_pylist()) == list(range(2, 32))


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(st.sampled_from(LINES), min_size=0, max_size=8),
    ending=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
    chunk_bytes=st.integers(min_value=5, max_value=400),
)
def test_chunking_never_changes_rows_or_line_numbers(
    tmp_path_factory, lines, ending, final_newline, chunk_bytes
):
    path = tmp_path_factory.mktemp("chunks") / "b.csv"
    write_lines(path, lines, ending, final_newline)
    if lines and lines[-1] == "" and not final_newline:
        lines = lines[:-1]  # "...\n" + "" is just a final newline, not an empty line
    whole = readers.read_boxes_file(str(path), "train", {"/m/1"}, chunk_bytes=1 << 30)
    chunked = readers.read_boxes_file(str(path), "train", {"/m/1"}, chunk_bytes=chunk_bytes)
    assert whole[0].equals(chunked[0]) and whole[1].equals(chunked[1])
    header = readers.read_header(str(path))
    chunks = readers.plan_chunks(str(path), "train", header, chunk_bytes)
    assert sum(readers.count_lines(chunk) for chunk in chunks) == len(lines)
    numbers = chunked[0]["line"].to_pylist() + chunked[1]["line"].to_pylist()
    assert sorted(numbers) == list(range(2, len(lines) + 2))
    raws = dict(zip(chunked[1]["line"].to_pylist(), chunked[1]["raw"].to_pylist(), strict=True))
    for number, raw in raws.items():
        assert raw == lines[number - 2]


def test_first_line_numbers_follow_the_chunks_before(tmp_path):
    path = tmp_path / "b.csv"
    write_lines(path, LINES, "\n", True)
    header = readers.read_header(str(path))
    chunks = readers.plan_chunks(str(path), "train", header, chunk_bytes=60)
    counts = {(c.url, c.index): readers.count_lines(c) for c in chunks}
    firsts = [readers.first_line(c, counts) for c in chunks]
    assert firsts[0] == 2  # the header is line 1
    assert firsts == [2 + sum(counts[(str(path), i)] for i in range(k)) for k in range(len(chunks))]
    for chunk, first in zip(chunks, firsts, strict=True):
        rows, rejects = readers.read_chunk(chunk, header, first, {"/m/1"})
        numbers = rows["line"].to_pylist() + rejects["line"].to_pylist()
        assert not numbers or min(numbers) == first


def test_plan_chunks_cover_the_data_contiguously(tmp_path):
    path = tmp_path / "b.csv"
    write_lines(path, LINES, "\n", True)
    header = readers.read_header(str(path))
    chunks = readers.plan_chunks(str(path), "validation", header, chunk_bytes=50)
    assert chunks[0].start == header.data_start == len(HEADER) + 1
    assert chunks[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:], strict=False))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {c.split for c in chunks} == {"validation"}


def test_count_lines_reads_only_its_range_and_the_byte_before(tmp_path, monkeypatch):
    path = tmp_path / "b.csv"
    write_lines(path, LINES, "\n", True)
    header = readers.read_header(str(path))
    chunk = readers.plan_chunks(str(path), "train", header, chunk_bytes=60)[2]
    calls = []
    real_read_range = io.read_range

    def recording_read_range(url, start, end):
        calls.append((start, end))
        return real_read_range(url, start, end)

    monkeypatch.setattr(io, "read_range", recording_read_range)
    monkeypatch.setattr(io, "read_bytes", lambda url: pytest.fail("read the whole file"))
    readers.count_lines(chunk)
    assert calls == [(chunk.start - 1, chunk.end)]


def test_a_chunk_inside_one_long_line_has_no_lines(tmp_path):
    path = tmp_path / "b.csv"
    write_lines(path, [LINES[-1], LINES[0]], "\n", True)
    header = readers.read_header(str(path))
    inside = readers.Chunk(str(path), "train", 1, header.data_start + 10, header.data_start + 20)
    assert readers.count_lines(inside) == 0
    rows, rejects = readers.read_chunk(inside, header, 99, {"/m/1"})
    assert rows.num_rows == rejects.num_rows == 0
