"""The run record: input fingerprints, library versions, per-split counts, the reject bound and
the record's final form (status, error, summaries).

Counts are nested dicts of ints ({stage: {split: n}} or {"rejects": {split: {reason: n}}}) that
sum across bundles with `merge_counts`, so any runner can combine them.
"""

import hashlib
import platform
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata

import numpy as np
import pyarrow as pa

from hierdata.errors import RejectBoundExceeded
from hierdata.io import filesystem

FINGERPRINT_BYTES = 1 << 20
_PACKAGES = (
    "hier-openimages",
    "apache-beam",
    "pyarrow",
    "numpy",
    "polars",
    "pandas",
    "fsspec",
    "gcsfs",
    "pillow",
    "networkx",
    "shapely",
)


def fingerprint(url: str) -> dict:
    """Cheap identity of an input file: size, the store's checksum or mtime, sha256 of its head.

    Hashing a whole 2.2 GB CSV on the launcher would take minutes over gs://; size plus the
    object's own md5/etag (gs://) or mtime (local) plus the first MiB tells runs apart.
    """
    fs, path = filesystem(url)
    info = fs.info(path)
    with fs.open(path, "rb") as handle:
        head = handle.read(FINGERPRINT_BYTES)
    record = {
        "url": url,
        "size": int(info.get("size") or 0),
        "sha256_first_mib": hashlib.sha256(head).hexdigest(),
    }
    for key in ("md5Hash", "etag", "ETag", "crc32c", "mtime", "updated"):
        if info.get(key) is not None:
            record[key] = str(info[key])
    return record


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def count_per_split(table: pa.Table, distinct: str | None = None) -> dict[str, int]:
    """Rows per split ({"train": 812, ...}), or distinct values of `distinct` per split."""
    if table.num_rows == 0:
        return {}
    aggregate = ([], "count_all") if distinct is None else (distinct, "count_distinct")
    grouped = table.group_by("split").aggregate([aggregate])
    counts = grouped["count_all" if distinct is None else f"{distinct}_count_distinct"]
    return dict(zip(grouped["split"].to_pylist(), counts.to_pylist(), strict=True))


def read_counts(split: str, rows: pa.Table, rejects: pa.Table) -> dict:
    """The counts of one read CSV chunk: data lines, valid rows, rejects by reason.

    Args:
        split: the chunk's split.
        rows, rejects: schemas.ROWS and schemas.REJECTS of the chunk (every line in one).
    Returns:
        {"lines": {split: n}, "rows": {split: n}, "rejects": {split: {reason: n}}}.
    """
    by_reason: dict[str, int] = {}
    if rejects.num_rows:
        reasons, counts = np.unique(
            rejects.column("reason").to_numpy(zero_copy_only=False), return_counts=True
        )
        by_reason = {str(r): int(n) for r, n in zip(reasons, counts, strict=True)}
    return {
        "lines": {split: rows.num_rows + rejects.num_rows},
        "rows": {split: rows.num_rows},
        "rejects": {split: by_reason},
    }


def merge_counts(left: Mapping, right: Mapping) -> dict:
    """Sum two nested count dicts key by key (leaves are ints)."""
    merged = dict(left)
    for key, value in right.items():
        if isinstance(value, Mapping):
            merged[key] = merge_counts(merged.get(key, {}), value)
        else:
            merged[key] = merged.get(key, 0) + value
    return merged


def merge_all(counts: Iterable[Mapping]) -> dict:
    merged: dict = {}
    for item in counts:
        merged = merge_counts(merged, item)
    return merged


def reject_totals(counts: Mapping) -> tuple[int, int, dict[str, int]]:
    """(input data lines, rejected lines, rejects by reason) over all splits."""
    lines = sum(counts.get("lines", {}).values())
    by_reason: dict[str, int] = {}
    for per_reason in counts.get("rejects", {}).values():
        for reason, n in per_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return lines, sum(by_reason.values()), by_reason


def check_reject_bound(counts: Mapping, max_reject_fraction: float) -> None:
    """Raise RejectBoundExceeded with one line naming the worst reasons past the bound.

    The bound is exclusive: a fraction equal to max_reject_fraction passes.
    """
    lines, rejected, by_reason = reject_totals(counts)
    if lines == 0 or rejected / lines <= max_reject_fraction:
        return
    worst = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))[:3]
    reasons = ", ".join(f"{reason} ({n})" for reason, n in worst)
    raise RejectBoundExceeded(
        f"{rejected} of {lines} input rows rejected ({rejected / lines:.2%} > "
        f"--max_reject_fraction {max_reject_fraction:.2%}); worst reasons: {reasons}; "
        f"see tables/rejects"
    )


def start_record(
    options: Mapping, runner: str, input_urls: Iterable[str], chunks: int, image_buckets: int
) -> dict:
    """run.json as the launcher writes it down before the run starts.

    Args:
        options: the resolved options (config.as_dict()).
        runner: the runner's name.
        input_urls: every input file read (fingerprinted here).
        chunks, image_buckets: how the work was cut.
    """
    return {
        "started_at": now(),
        "started_epoch": time.time(),
        "options": options,
        "runner": runner,
        "versions": versions(),
        "inputs": [fingerprint(url) for url in input_urls],
        "chunks": chunks,
        "image_buckets": image_buckets,
    }


def image_reject_summary(rejects: Iterable[Mapping]) -> dict[str, dict[str, int]]:
    """run.json's "image_rejects": {split: {reason: images}} of schemas.REJECTS rows (dicts)."""
    summary: dict[str, dict[str, int]] = {}
    for row in rejects:
        per_split = summary.setdefault(row["split"], {})
        per_split[row["reason"]] = per_split.get(row["reason"], 0) + 1
    return summary


def final_record(
    started: Mapping,
    counts: Mapping,
    max_reject_fraction: float,
    summaries: Mapping[str, object],
) -> tuple[dict, RejectBoundExceeded | None]:
    """run.json as the run ends: the launcher's record with counts, summaries and status.

    Args:
        started: the record the launcher wrote down (options, versions, inputs, started_epoch).
        counts: the summed counts of every stage.
        max_reject_fraction: the reject bound (check_reject_bound).
        summaries: stage summaries by run.json key ("label_pairs", "label_tree", ...).
    Returns:
        (record, error): status "succeeded" and error None, or status "failed" with the
        error's text in "error" and the RejectBoundExceeded the run must raise.
    """
    record = dict(started, counts=counts, finished_at=now(), **summaries)
    record["elapsed_seconds"] = round(time_since(started["started_epoch"]), 3)
    try:
        check_reject_bound(counts, max_reject_fraction)
    except RejectBoundExceeded as err:
        return dict(record, status="failed", error=str(err)), err
    return dict(record, status="succeeded"), None


def time_since(epoch: float) -> float:
    return time.time() - epoch


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
