"""The run record: input fingerprints, library versions, per-split counts, the reject bound and
the record's final form (status, error, summaries).

Counts are nested dicts of ints ({stage: {split: n}} or {"rejects": {split: {reason: n}}}) that
sum across bundles with `merge_counts`, so any runner can combine them.
"""

import hashlib
import json
import platform
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata

import numpy as np
import pyarrow as pa

from hierdata.errors import ImageRejectBoundExceeded, InputError, RejectBoundExceeded
from hierdata.io import filesystem

FINGERPRINT_BYTES = 1 << 20
_PACKAGES = (
    "hier-openimages",
    "apache-beam",
    "pyarrow",
    "numpy",
    "polars",
    "fsspec",
    "gcsfs",
    "s3fs",
    "pillow",
    "networkx",
    "matplotlib",
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


def _worst(by_reason: Mapping[str, int]) -> str:
    worst = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))[:3]
    return ", ".join(f"{reason} ({n})" for reason, n in worst)


def check_reject_bound(counts: Mapping, max_reject_fraction: float) -> None:
    """Raise RejectBoundExceeded with one line naming the worst reasons past the bound.

    The bound is exclusive: a fraction equal to max_reject_fraction passes.
    """
    lines, rejected, by_reason = reject_totals(counts)
    if lines == 0 or rejected / lines <= max_reject_fraction:
        return
    raise RejectBoundExceeded(
        f"{rejected} of {lines} input rows rejected ({rejected / lines:.2%} > "
        f"--max_reject_fraction {max_reject_fraction:.2%}); worst reasons: {_worst(by_reason)}; "
        f"see tables/rejects"
    )


def image_totals(counts: Mapping, image_rejects: Mapping, shards: Mapping) -> dict:
    """run.json's "images" headline: images planned for the shards, samples written, images
    rejected and rejects by reason, over all splits.

    Args:
        counts: the summed counts ("samples_planned": {split: n}).
        image_rejects: {split: {reason: n}} (image_reject_summary).
        shards: {split: {"shards", "samples", "bytes"}} of the shard writer.
    """
    by_reason: dict[str, int] = {}
    for per_reason in image_rejects.values():
        for reason, n in per_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return {
        "planned": sum(counts.get("samples_planned", {}).values()),
        "written": sum(int(split.get("samples", 0)) for split in shards.values()),
        "rejected": sum(by_reason.values()),
        "by_reason": dict(sorted(by_reason.items())),
    }


def check_image_reject_bound(images: Mapping, max_image_reject_fraction: float) -> None:
    """Raise ImageRejectBoundExceeded with one line naming the worst reasons when more images
    than the bound were rejected (a fraction equal to it passes), or when images were planned
    for the shards and no sample was written whatever the bound."""
    planned, rejected = images["planned"], images["rejected"]
    if planned == 0:
        return
    worst = _worst(images["by_reason"]) or "none recorded"
    if images["written"] == 0:
        raise ImageRejectBoundExceeded(
            f"no shard sample written: {rejected} of the {planned} images planned were rejected; "
            f"worst reasons: {worst}; see tables/rejects (file = the image URL)"
        )
    if rejected / planned > max_image_reject_fraction:
        raise ImageRejectBoundExceeded(
            f"{rejected} of {planned} images rejected ({rejected / planned:.2%} > "
            f"--max_image_reject_fraction {max_image_reject_fraction:.2%}); worst reasons: "
            f"{worst}; see tables/rejects (file = the image URL)"
        )


# Options that say where things are or how the work is cut, not what the outputs hold.
_NOT_FINGERPRINTED = (
    "output",
    "input",
    "class_descriptions",
    "hierarchy",
    "chunk_bytes",
    "bucket_bytes",
    "local_workers",
)
_CONTENT_KEYS = ("size", "sha256_first_mib", "md5Hash", "etag", "ETag", "crc32c")


def run_fingerprint(options: Mapping, inputs: Iterable[Mapping]) -> str:
    """A run's identity: sha256 (first 16 hex digits) of the options that decide its outputs
    and of its inputs' content fingerprints (file names, sizes, head hashes, store checksums;
    not their location or mtime).

    The same input and options give the same fingerprint on any machine, so a rerun's shard
    markers are byte-identical; trees and shards from runs with different inputs or options
    differ in it, which is how evaluation refuses to mix them.
    """
    identity = {
        "options": {k: v for k, v in options.items() if k not in _NOT_FINGERPRINTED},
        "inputs": [
            {"name": str(i["url"]).rstrip("/").rsplit("/", 1)[-1]}
            | {k: i[k] for k in _CONTENT_KEYS if k in i}
            for i in inputs
        ],
    }
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
    inputs = [fingerprint(url) for url in input_urls]
    return {
        "started_at": now(),
        "started_epoch": time.time(),
        "options": options,
        "runner": runner,
        "versions": versions(),
        "inputs": inputs,
        "fingerprint": run_fingerprint(options, inputs),
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
    max_image_reject_fraction: float = 1.0,
) -> tuple[dict, InputError | None]:
    """run.json as the run ends: the launcher's record with counts, summaries and status.

    Args:
        started: the record the launcher wrote down (options, versions, inputs, started_epoch).
        counts: the summed counts of every stage.
        max_reject_fraction: the row reject bound (check_reject_bound).
        summaries: stage summaries by run.json key ("label_pairs", "label_tree", ...); with
            "image_rejects" and "shards" (a run that wrote shards) the record gains the
            "images" headline and the image bound applies.
        max_image_reject_fraction: the image reject bound (check_image_reject_bound).
    Returns:
        (record, error): status "succeeded" and error None, or status "failed" with the
        error's text in "error" and the bound's InputError the run must raise.
    """
    record = dict(started, counts=counts, finished_at=now(), **summaries)
    if "image_rejects" in summaries:
        record["images"] = image_totals(
            counts, summaries["image_rejects"], summaries.get("shards") or {}
        )
    record["elapsed_seconds"] = round(time_since(started["started_epoch"]), 3)
    try:
        check_reject_bound(counts, max_reject_fraction)
        if "images" in record:
            check_image_reject_bound(record["images"], max_image_reject_fraction)
    except (RejectBoundExceeded, ImageRejectBoundExceeded) as err:
        return dict(record, status="failed", error=str(err)), err
    return dict(record, status="succeeded"), None


def time_since(epoch: float) -> float:
    return time.time() - epoch


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
