"""Row validation for Open Images box annotations: the DESIGN "Boxes" rule, one check per function.

Every check runs over whole pyarrow string columns (one chunk of a CSV at a time), never per row.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.tables import IMAGE_ID_PATTERN, REJECTS, ROWS

REJECT_REASONS = (
    "column_count",
    "empty_line",
    "bad_number",
    "bad_flag",
    "out_of_range",
    "empty_box",
    "bad_image_id",
    "unknown_label",
)
# A rejected row carries the first of these that applies.
REJECT_PRIORITY = (
    "empty_line",
    "column_count",
    "bad_image_id",
    "unknown_label",
    "bad_number",
    "bad_flag",
    "out_of_range",
    "empty_box",
)
COORDINATE_TOLERANCE = 1e-6

COORDINATES = {"XMin": "xmin", "XMax": "xmax", "YMin": "ymin", "YMax": "ymax"}
FLAGS = {
    "IsOccluded": "is_occluded",
    "IsTruncated": "is_truncated",
    "IsGroupOf": "is_group_of",
    "IsDepiction": "is_depiction",
    "IsInside": "is_inside",
}
# Every column the rule reads; others in a file are ignored.
COLUMNS = ("ImageID", "Source", "LabelName", "Confidence", *COORDINATES, *FLAGS)

# The grammar of a number, as accepted by Arrow's string -> float64 cast minus inf/nan; no
# surrounding whitespace, no digit separators ("1_0").
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_IMAGE_ID = f"^{IMAGE_ID_PATTERN}$"
_BLANK = r"^\s*$"
# Flag spellings -> value; "" is an absent value (unknown). "1.0" etc. come from pandas writing an
# integer column that held a NaN.
_FLAG_TEXT = pa.array(["-1", "0", "1", "", "-1.0", "0.0", "1.0"], pa.large_string())
_FLAG_VALUE = np.array([-1, 0, 1, -1, -1, 0, 1], np.int8)


def _mask(flags: pa.Array) -> np.ndarray:
    """Boolean pyarrow array -> numpy bool, null read as False."""
    return pc.fill_null(flags, False).to_numpy(zero_copy_only=False)


def _as_array(values: pa.Array | np.ndarray, type_: pa.DataType) -> pa.Array:
    array = values if isinstance(values, pa.Array) else pa.array(values)
    return array.cast(type_)


def empty_line(lines: pa.Array) -> np.ndarray:
    """(N,) True where the line is blank or whitespace only."""
    return _mask(pc.match_substring_regex(lines, _BLANK))


def column_count(field_counts: np.ndarray, header_count: int) -> np.ndarray:
    """(N,) True where the number of fields differs from the header's."""
    return field_counts != header_count


def bad_image_id(image_ids: pa.Array) -> np.ndarray:
    """(N,) True unless 1-128 characters of [A-Za-z0-9_-]: IDs become file names and shard keys."""
    return ~_mask(pc.match_substring_regex(image_ids, _IMAGE_ID))


def unknown_label(label_ids: pa.Array, labels: Collection[str]) -> np.ndarray:
    """(N,) True where the label is not among the class descriptions' label ids."""
    known = labels if isinstance(labels, pa.Array) else pa.array(list(labels), pa.string())
    return ~_mask(pc.is_in(label_ids, value_set=known))


def parse_numbers(texts: pa.Array, empty_is_null: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Parse decimal text as float64.

    Args:
        texts: (N,) strings; null entries (rows already rejected) parse to NaN and are not flagged.
        empty_is_null: read "" as an absent value (NaN, not flagged) instead of a bad number.
    Returns:
        values (N,) float64, NaN where absent or bad; bad (N,) True where the text is not a
        finite float.
    """
    if empty_is_null:
        texts = pc.if_else(pc.equal(texts, ""), None, texts)
    present = _mask(pc.is_valid(texts))
    try:
        parsed = pc.cast(texts, pa.float64())
    except pa.ArrowInvalid:
        # Rare path: at least one bad text in the chunk; null the bad ones and cast the rest.
        parsed = pc.cast(
            pc.if_else(pc.match_substring_regex(texts, _NUMBER), texts, None), pa.float64()
        )
    values = parsed.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    # Arrow also accepts inf/nan and overflows "1e999" to inf; none of them is a coordinate.
    return values, present & ~np.isfinite(values)


def parse_flags(texts: pa.Array | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse an Is* column: -1 unknown, 0 false, 1 true; "" and a missing column read as -1.

    Returns values (N,) int8 and bad (N,) True where the text is none of those values.
    """
    if texts is None:
        return np.full(n, -1, np.int8), np.zeros(n, bool)
    index = pc.index_in(texts, value_set=_FLAG_TEXT)
    found = _mask(pc.is_valid(index))
    codes = pc.fill_null(index, 0).to_numpy(zero_copy_only=False)
    bad = _mask(pc.is_valid(texts)) & ~found
    return np.where(found, _FLAG_VALUE[codes], np.int8(-1)).astype(np.int8), bad


def out_of_range(coordinates: np.ndarray) -> np.ndarray:
    """(N,) True where any of the (N, 4) normalised coordinates is outside [0, 1] by more than
    COORDINATE_TOLERANCE (exactly the tolerance away is still inside)."""
    outside = (coordinates < -COORDINATE_TOLERANCE) | (coordinates > 1 + COORDINATE_TOLERANCE)
    return outside.any(axis=1)


def clip_coordinates(coordinates: np.ndarray) -> np.ndarray:
    """(N, 4) coordinates clipped to [0, 1]: rounding noise within the tolerance is not an error."""
    return np.clip(coordinates, 0.0, 1.0)


def empty_box(coordinates: np.ndarray) -> np.ndarray:
    """(N,) True where XMin >= XMax or YMin >= YMax; columns are (xmin, xmax, ymin, ymax)."""
    return (coordinates[:, 0] >= coordinates[:, 1]) | (coordinates[:, 2] >= coordinates[:, 3])


@dataclass(frozen=True)
class _ParsedFields:
    """The numeric fields of one chunk, parsed; bad_* mark lines whose text did not parse."""

    coordinates: np.ndarray  # (N, 4) XMin, XMax, YMin, YMax as written
    confidence: np.ndarray | None  # (N,) or None without a Confidence column
    flags: dict[str, np.ndarray]  # schema field -> (N,) int8
    bad_number: np.ndarray  # (N,) bool
    bad_flag: np.ndarray  # (N,) bool


def _parse_fields(fields: Mapping[str, pa.Array], n: int) -> _ParsedFields:
    coordinates = np.empty((n, 4), np.float64)
    bad_number = np.zeros(n, bool)
    for column, name in enumerate(COORDINATES):
        coordinates[:, column], bad = parse_numbers(fields[name])
        bad_number |= bad
    confidence = None
    if "Confidence" in fields:
        confidence, bad = parse_numbers(fields["Confidence"], empty_is_null=True)
        bad_number |= bad
    flags = {}
    bad_flag = np.zeros(n, bool)
    for name, field in FLAGS.items():
        flags[field], bad = parse_flags(fields.get(name), n)
        bad_flag |= bad
    return _ParsedFields(coordinates, confidence, flags, bad_number, bad_flag)


def _reject_reasons(
    lines: pa.Array,
    field_counts: np.ndarray,
    fields: Mapping[str, pa.Array],
    header_count: int,
    labels: Collection[str],
    parsed: _ParsedFields,
    clipped: np.ndarray,
) -> np.ndarray:
    """(N,) int8: each line's first failed check in REJECT_PRIORITY (an index into
    REJECT_REASONS), -1 for a kept line."""
    checks = {
        "empty_line": empty_line(lines),
        "column_count": column_count(field_counts, header_count),
        "bad_image_id": bad_image_id(fields["ImageID"]),
        "unknown_label": unknown_label(fields["LabelName"], labels),
        "bad_number": parsed.bad_number,
        "bad_flag": parsed.bad_flag,
        "out_of_range": out_of_range(parsed.coordinates),
        "empty_box": empty_box(clipped),
    }
    reason = np.full(len(field_counts), -1, np.int8)
    for name in REJECT_PRIORITY:
        reason[(reason < 0) & checks[name]] = REJECT_REASONS.index(name)
    return reason


def _kept_rows(
    fields: Mapping[str, pa.Array],
    parsed: _ParsedFields,
    clipped: np.ndarray,
    kept: np.ndarray,
    split: str,
    file: str,
    line_numbers: np.ndarray,
) -> pa.Table:
    keep = pa.array(kept)
    n_kept = int(kept.sum())
    source = fields.get("Source")
    confidence = parsed.confidence
    columns = {
        "split": pa.repeat(split, n_kept),
        "image_id": fields["ImageID"].filter(keep),
        "label": fields["LabelName"].filter(keep),
        # An empty Source reads as absent, like an empty Confidence.
        "source": (
            pa.nulls(n_kept, pa.string())
            if source is None
            else pc.if_else(pc.equal(source, ""), None, source).filter(keep)
        ),
        "confidence": (
            pa.nulls(n_kept, pa.float32())
            if confidence is None
            else pa.array(confidence[kept].astype(np.float32), from_pandas=True)
        ),
        **{field: clipped[kept, column] for column, field in enumerate(COORDINATES.values())},
        **{field: values[kept] for field, values in parsed.flags.items()},
        "file": pa.repeat(file, n_kept),
        "line": line_numbers[kept].astype(np.int64),
    }
    return pa.Table.from_arrays([_as_array(columns[f.name], f.type) for f in ROWS], schema=ROWS)


def _rejected_rows(
    lines: pa.Array, reason: np.ndarray, split: str, file: str, line_numbers: np.ndarray
) -> pa.Table:
    rejected = reason >= 0
    n_rejected = int(rejected.sum())
    reasons = np.asarray(REJECT_REASONS, dtype=object)[reason[rejected]]
    return pa.Table.from_arrays(
        [
            pa.repeat(split, n_rejected).cast(pa.string()),
            pa.repeat(file, n_rejected).cast(pa.string()),
            pa.array(line_numbers[rejected].astype(np.int64)),
            pa.array(reasons, pa.string()),
            lines.filter(pa.array(rejected)).cast(pa.string()),
        ],
        schema=REJECTS,
    )


def validate_rows(
    lines: pa.Array,
    field_counts: np.ndarray,
    fields: Mapping[str, pa.Array],
    header_count: int,
    labels: Collection[str],
    split: str,
    file: str,
    line_numbers: np.ndarray,
) -> tuple[pa.Table, pa.Table]:
    """Apply the "Boxes" rule to one chunk of parsed lines.

    Args:
        lines: (N,) line texts without line endings (the `raw` of a reject).
        field_counts: (N,) number of fields in each line.
        fields: header column name -> (N,) field texts, null where the field count is wrong;
            must hold the required columns, may hold Source, Confidence and the Is* flags.
        header_count: number of header columns.
        labels: known label ids (a collection of str or a pyarrow string array).
        split, file: written to every output row (file is a basename).
        line_numbers: (N,) 1-based physical line numbers.
    Returns:
        (rows with schema ROWS, rejects with schema REJECTS); each line is in exactly one.
    """
    parsed = _parse_fields(fields, len(lines))
    clipped = clip_coordinates(parsed.coordinates)
    reason = _reject_reasons(lines, field_counts, fields, header_count, labels, parsed, clipped)
    rows = _kept_rows(fields, parsed, clipped, reason < 0, split, file, line_numbers)
    return rows, _rejected_rows(lines, reason, split, file, line_numbers)
