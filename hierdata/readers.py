"""Open Images bbox CSV readers: header, byte-range chunks, line parsing and validation.

Finding the input files and reading the small ones (class descriptions, hierarchy) is
hierdata.input_files.

A bbox chunk is a byte range (a line belongs to the chunk it starts in), so big files split.
"""

import csv
import posixpath
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from hierdata import io
from hierdata.boxes import COLUMNS, validate_rows
from hierdata.errors import InputError
from schemas.tables import IMAGE_ID_PATTERN, REJECTS, ROWS

REQUIRED_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")

_BOM = b"\xef\xbb\xbf"
_IMAGE_ID = re.compile(IMAGE_ID_PATTERN)
# Leading bytes of files that are not plain text: the readers cut byte ranges of plain CSV.
_BINARY_MAGIC = {
    b"\x1f\x8b": "gzip-compressed",
    b"BZh": "bzip2-compressed",
    b"\xfd7zXZ\x00": "xz-compressed",
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
    b"PK\x03\x04": "a zip archive",
}
# Bytes read per step when looking for the end of the header or of a chunk's last line.
_SCAN_BYTES = 1 << 16
# A chunk is parsed in batches of whole lines of about this size: the temporaries of a batch
# (a few arrays of one int64 per field) stay small enough to be reused, not page-faulted anew.
_BATCH_BYTES = 4 << 20


@dataclass(frozen=True)
class Header:
    """The header line of a bbox CSV."""

    columns: tuple[str, ...]  # column names as in the file (stripped of \r and BOM)
    data_start: int  # byte offset where the first data line starts (file size if none)
    newline: bytes = b"\n"  # b"\r" for a file with CR-only line endings (classic Mac)


def read_header(url: str) -> Header:
    """Read and check the header line of a bbox CSV, reading only as many bytes as it needs.

    Lines end in LF, CRLF or (classic Mac) CR alone: the first line break decides, and a file
    whose header ends in a CR not followed by LF is read with CR as its newline.

    Raises InputError for an empty file, a compressed or binary file, or one whose header
    lacks a REQUIRED_COLUMNS name.
    """
    size = io.size(url)
    if size == 0:
        raise InputError(f"{url}: empty file")
    head = b""
    # Never ask for bytes at or past EOF: object stores answer such ranges with an error.
    # A CR as the last byte read may still be the start of a CRLF: read one more block.
    while len(head) < size and (
        (b"\n" not in head and b"\r" not in head[:-1]) or head.endswith(b"\r")
    ):
        head += io.read_range(url, len(head), min(len(head) + _SCAN_BYTES, size))
    _check_text(url, head)
    line_feed, carriage_return = head.find(b"\n"), head.find(b"\r")
    newline = b"\n"
    if carriage_return >= 0 and (line_feed < 0 or carriage_return + 1 < line_feed):
        newline = b"\r"  # a CR before the first LF, not part of a CRLF
    end = head.find(newline)
    data_start = len(head) if end < 0 else end + 1
    line = head[:data_start].removeprefix(_BOM).rstrip(b"\n").rstrip(b"\r")
    try:
        columns = tuple(next(csv.reader([line.decode("utf-8", errors="replace")]), []))
    except csv.Error as err:
        raise InputError(f"{url}: unreadable header line: {err}") from err
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InputError(f"{url}: missing required column(s) {', '.join(missing)}")
    return Header(columns, data_start, newline)


def _check_text(url: str, head: bytes) -> None:
    """Refuse a compressed or binary file with one line, before its bytes become rejects."""
    for magic, kind in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"{url} is {kind}; decompress it first (the reader needs plain CSV)")
    if b"\x00" in head:
        raise InputError(f"{url} is not a text CSV (it holds NUL bytes)")


@dataclass(frozen=True)
class Chunk:
    """A byte range of a bbox CSV; a line belongs to the chunk in which it starts."""

    url: str
    split: str
    index: int  # 0..n-1 within the file
    start: int  # inclusive byte offset
    end: int  # exclusive byte offset
    newline: bytes = b"\n"  # the file's line end (Header.newline)


def plan_chunks(url: str, split: str, header: Header, chunk_bytes: int = 64 << 20) -> list[Chunk]:
    """Cut [header.data_start, file size) into chunks of `chunk_bytes`; at least one chunk."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    size = io.size(url)
    starts = range(header.data_start, max(size, header.data_start + 1), chunk_bytes)
    return [
        Chunk(url, split, index, start, max(min(start + chunk_bytes, size), start), header.newline)
        for index, start in enumerate(starts)
    ]


def _read_with_previous_byte(chunk: Chunk) -> bytes:
    """Bytes [start - 1, end) of the chunk's file (fewer at EOF); a virtual newline before byte
    0, so that a line starts at p exactly when the returned byte before p is the newline."""
    if chunk.start == 0:
        return chunk.newline + io.read_range(chunk.url, 0, chunk.end)
    return io.read_range(chunk.url, chunk.start - 1, chunk.end)


def count_lines(chunk: Chunk) -> int:
    """Number of lines starting in [start, end); a last line without "\\n" counts, the empty
    string after a final "\\n" does not. Reads only the range plus the byte before it."""
    data = _read_with_previous_byte(chunk)
    # Each newline before the last byte read starts a line inside the range.
    return data.count(chunk.newline, 0, max(len(data) - 1, 0))


def first_line(chunk: Chunk, line_counts: Mapping[tuple[str, int], int]) -> int:
    """1-based line number of the chunk's first line: 2 (the header is line 1) plus the lines
    of the chunks before it in its file (line_counts: count_lines by (url, index))."""
    return 2 + sum(line_counts[(chunk.url, index)] for index in range(chunk.index))


def _chunk_text(chunk: Chunk) -> bytes:
    """The bytes of every line starting in the chunk, the last one read to its end."""
    newline = chunk.newline
    data = _read_with_previous_byte(chunk)
    first = data.find(newline, 0, max(len(data) - 1, 0))
    if first < 0:
        return b""
    body = data[first + 1 :]
    if body.endswith(newline):
        return body
    # The last line may run past `end`: read on until its newline or EOF (never past EOF:
    # object stores answer a range starting there with an error).
    size = io.size(chunk.url)
    position = chunk.end
    while position < size:
        more = io.read_range(chunk.url, position, min(position + _SCAN_BYTES, size))
        end = more.find(newline)
        if end >= 0:
            return body + more[: end + 1]
        body += more
        position += len(more)
    return body


def _normalise(body: bytes) -> bytes:
    """Lines ending in exactly one "\\n" each (CRLF and a final missing newline fixed)."""
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
        # A last line without "\n" may still end in "\r".
        body = body.removesuffix(b"\r")
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return body


def _pieces(data: np.ndarray, text: bytes, separators: bytes) -> tuple[pa.Array, np.ndarray]:
    """Cut `text` (which ends with a separator) at every byte of `separators`.

    Args:
        data: the bytes of `text` as a (B,) uint8 array.
    Returns:
        (K,) large_string pieces without their separators, and (K,) int64 separator positions.
    """
    is_separator = data == separators[0]
    for separator in separators[1:]:
        is_separator |= data == separator
    ends = np.flatnonzero(is_separator)
    # With the separators deleted the pieces are contiguous: piece k ends at ends[k] - k.
    offsets = np.zeros(len(ends) + 1, np.int64)
    np.subtract(ends, np.arange(len(ends)), out=offsets[1:])
    values = text.translate(None, separators)
    pieces = pa.LargeStringArray.from_buffers(
        len(ends), pa.py_buffer(offsets), pa.py_buffer(values)
    )
    return pieces, ends


def parse_lines(
    body: bytes, columns: tuple[str, ...], wanted: Collection[str]
) -> tuple[pa.Array, np.ndarray, dict[str, pa.Array]]:
    """Split whole lines into lines and comma-separated fields, in bulk (no per-line Python).

    Args:
        body: complete lines, each ending in "\\n" or "\\r\\n" (the last may lack it).
        columns: the header's column names; wanted: the names to return fields for.
    Returns:
        lines (N,) without line endings, invalid UTF-8 replaced; field counts (N,); and per
        wanted column present in the header (first occurrence) its (N,) field texts, null
        where the field count differs from the header's. Lines holding a '"' are re-parsed by
        the csv module (quoted fields; Open Images has none, so this path is rare).
    """
    body = _normalise(body)
    data = np.frombuffer(body, np.uint8)
    lines, newlines = _pieces(data, body, b"\n")
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        # Rare: invalid UTF-8. Replacement never touches "\n" or ",", so lines stay lines.
        return parse_lines(body.decode("utf-8", errors="replace").encode(), columns, wanted)
    fields, separators = _pieces(data, body, b",\n")
    line_ends = np.flatnonzero(data[separators] == ord("\n"))
    first_field = np.zeros(len(line_ends), np.int64)
    first_field[1:] = line_ends[:-1] + 1
    counts = line_ends - first_field + 1
    width = len(columns)
    if b'"' in body:
        quoted = np.unique(np.searchsorted(newlines, np.flatnonzero(data == ord('"'))))
        parsed = [_csv_fields(text) for text in lines.take(quoted).to_pylist()]
        counts[quoted] = [len(row) for row in parsed]
        complete = [row for row in parsed if len(row) == width]
        first_field[quoted[counts[quoted] == width]] = len(fields) + width * np.arange(
            len(complete)
        )
        extra = pa.array([field for row in complete for field in row], pa.large_string())
        fields = pa.concat_arrays([fields, extra])
    incomplete = counts != width
    by_name = {}
    for position, name in enumerate(columns):
        if name in wanted and name not in by_name:
            by_name[name] = fields.take(pa.array(first_field + position, mask=incomplete))
    return lines, counts, by_name


def _csv_fields(line: str) -> list[str]:
    """The fields of one line with quoted fields; none when the csv module cannot parse it
    (a stray "\\r"), which the field count check then rejects."""
    try:
        return next(csv.reader([line]), [""])
    except csv.Error:
        return []


def read_chunk(
    chunk: Chunk, header: Header, first_line: int, labels: Collection[str]
) -> tuple[pa.Table, pa.Table]:
    """Parse and validate every line starting in the chunk.

    Args:
        first_line: 1-based physical line number of the chunk's first line (the header is line
            1, so the first chunk has 2; later ones add the count_lines of the chunks before).
        labels: known label ids.
    Returns:
        (rows with schema ROWS, rejects with schema REJECTS); every line is in exactly one.
    """
    file = posixpath.basename(chunk.url.rstrip("/"))
    known = labels if isinstance(labels, pa.Array) else pa.array(list(labels), pa.string())
    parts = []
    text = _chunk_text(chunk)
    if chunk.newline == b"\r":  # CR-only lines: the parser splits at LF
        text = text.replace(b"\r", b"\n")
    for batch in _batches(text):
        lines, counts, fields = parse_lines(batch, header.columns, COLUMNS)
        line_numbers = first_line + np.arange(len(lines), dtype=np.int64)
        first_line += len(lines)
        parts.append(
            validate_rows(
                lines, counts, fields, len(header.columns), known, chunk.split, file, line_numbers
            )
        )
    rows = pa.concat_tables([ROWS.empty_table(), *(rows for rows, _ in parts)])
    rejects = pa.concat_tables([REJECTS.empty_table(), *(rejects for _, rejects in parts)])
    return rows, rejects


def _batches(body: bytes, batch_bytes: int = _BATCH_BYTES) -> list[bytes]:
    """Cut whole lines into batches of about `batch_bytes`, each ending after a newline."""
    batches, start = [], 0
    while start < len(body):
        end = body.find(b"\n", start + batch_bytes)
        end = len(body) if end < 0 else end + 1
        batches.append(body[start:end])
        start = end
    return batches


def head_image_ids(url: str, header: Header, limit: int) -> list[str]:
    """The first `limit` distinct valid ImageIDs of a bbox CSV, from its first 64 KiB of data
    (the launcher's image probe: no whole file is read)."""
    size = io.size(url)
    end = min(header.data_start + _SCAN_BYTES, size)
    if end <= header.data_start:
        return []
    data = io.read_range(url, header.data_start, end).replace(b"\r\n", b"\n")
    lines = data.replace(b"\r", b"\n").split(b"\n")
    if end < size:
        lines = lines[:-1]  # the last line may be cut by the range
    column = header.columns.index("ImageID")
    found: dict[str, None] = {}
    for line in lines:
        try:
            fields = next(csv.reader([line.decode("utf-8", errors="replace")]), [])
        except csv.Error:
            continue
        if len(fields) > column and _IMAGE_ID.fullmatch(fields[column]):
            found.setdefault(fields[column], None)
            if len(found) == limit:
                break
    return list(found)


def read_boxes_file(
    url: str, split: str, labels: Collection[str], chunk_bytes: int = 64 << 20
) -> tuple[pa.Table, pa.Table]:
    """Read a whole bbox CSV in-process: header, every chunk, line numbers as the pipeline's."""
    header = read_header(url)
    chunks = plan_chunks(url, split, header, chunk_bytes)
    line_counts = {(chunk.url, chunk.index): count_lines(chunk) for chunk in chunks}
    known = pa.array(list(labels), pa.string())
    parts = [read_chunk(c, header, first_line(c, line_counts), known) for c in chunks]
    rows = pa.concat_tables([ROWS.empty_table(), *(rows for rows, _ in parts)])
    rejects = pa.concat_tables([REJECTS.empty_table(), *(rejects for _, rejects in parts)])
    return rows, rejects
