"""Readers for a run's outputs: the Parquet tables, run.json and the shard index.

Every consumer (tests, trees, audit, training, evaluation) reads through here, with the names
and layout of schemas/.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from hierdata.errors import InputError, user_error_in
from hierdata.io import exists, filesystem, read_bytes
from schemas import TABLE_SCHEMAS, OutputLayout
from schemas.layout import shard_marker_url, sizes_json_url


def table_files(root: str, table: str) -> list[str]:
    """The Parquet files of one table, sorted, as URLs of the root's filesystem."""
    layout = OutputLayout(root)
    fs, pattern = filesystem(layout.table_glob(table))
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    paths = sorted(fs.glob(pattern))
    return [p if protocol in ("file", "local") else f"{protocol}://{p}" for p in paths]


def read_table(root: str, table: str) -> pa.Table:
    """One whole table, cast to its schema; an empty table when the run wrote no rows."""
    schema = TABLE_SCHEMAS[table]
    files = table_files(root, table)
    if not files:
        return schema.empty_table()
    parts = []
    for url in files:
        fs, path = filesystem(url)
        with fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            missing = [name for name in schema.names if name not in parquet.schema_arrow.names]
            if missing:
                raise InputError(
                    f"{url}: no column {', '.join(missing)}: written by an older version of the "
                    f"pipeline; rerun the pipeline on this output to read it"
                )
            parts.append(parquet.read().select(schema.names).cast(schema))
    return pa.concat_tables(parts)


RUN_KEY = "run_fingerprint"  # trees files: node-link "graph" attribute, Parquet metadata key


def stamp_run(tree: dict | pa.Table, run_fingerprint: str | None) -> dict | pa.Table:
    """A trees file's content with run.json's "fingerprint" in it: a node-link dict gets it as
    a graph attribute, a table as schema metadata (None: unchanged)."""
    if run_fingerprint is None:
        return tree
    if isinstance(tree, pa.Table):
        metadata = dict(tree.schema.metadata or {})
        metadata[RUN_KEY.encode()] = run_fingerprint.encode()
        return tree.replace_schema_metadata(metadata)
    return dict(tree, graph=dict(tree.get("graph") or {}, **{RUN_KEY: run_fingerprint}))


def trees_run(label_tree_json: dict) -> str | None:
    """The run fingerprint a label tree's node-link JSON carries (None: an older run)."""
    return (label_tree_json.get("graph") or {}).get(RUN_KEY)


def check_same_run(trees_run_fingerprint: str | None, shard_urls: Sequence[str]) -> None:
    """Refuse trees and shards that come from different pipeline runs.

    Each shard's completion marker names its run ("run"); trees carry the same fingerprint
    (stamp_run). Files from runs that recorded none are not compared.

    Raises:
        InputError: shards of several runs, or shards of another run than the trees.
    """
    runs: dict[str, str] = {}
    for url in shard_urls:
        marker = read_shard_marker(url) or {}
        if marker.get("run"):
            runs.setdefault(str(marker["run"]), url)
    if len(runs) > 1:
        (first, a), (second, b) = list(runs.items())[:2]
        raise InputError(
            f"the shards come from different pipeline runs: {a} is from run {first}, {b} from "
            f"run {second}; rerun the pipeline or pass shards of one run"
        )
    if runs and trees_run_fingerprint and trees_run_fingerprint not in runs:
        ((shards_run, url),) = runs.items()
        raise InputError(
            f"the trees are from pipeline run {trees_run_fingerprint} but the shards (e.g. "
            f"{url}) from run {shards_run}: the ground truth would not match the crops; pass "
            "--trees and --shards of the same run"
        )


def read_run_record(root: str) -> dict:
    fs, path = filesystem(OutputLayout(root).run_json)
    if not fs.exists(path):
        raise InputError(f"no run.json under {root}: not a pipeline output, or the run failed")
    with fs.open(path, "rb") as handle:
        try:
            record = json.load(handle)
        except (ValueError, UnicodeDecodeError) as err:
            raise InputError(f"{OutputLayout(root).run_json} is not readable JSON: {err}") from err
    if not isinstance(record, dict):
        raise InputError(f"{OutputLayout(root).run_json} is not a run record")
    return record


def unreadable_output(err: BaseException) -> InputError | None:
    """The user error behind `err` when a command reads a pipeline output: an InputError on
    its chain, or a damaged file (a Parquet part, a JSON file) as one line; None for a bug."""
    found = user_error_in(err)
    if found is not None:
        return found
    damaged = (pa.ArrowInvalid, pl.exceptions.ComputeError, json.JSONDecodeError)
    current, seen = err, set()
    while current is not None and id(current) not in seen:
        if isinstance(current, damaged):
            message = str(current).strip().splitlines()[0] if str(current).strip() else ""
            return InputError(
                f"a file of the pipeline output is damaged ({type(current).__name__}: "
                f"{message}); rerun the pipeline to rewrite it"
            )
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@dataclass(frozen=True)
class ShardEntry:
    """One shard as its folder's sizes.json lists it."""

    url: str  # the tar
    name: str  # the tar's file name, the key in sizes.json
    samples: int
    marker_url: str  # its completion marker ({name}.json), written last


def read_sizes(shard_folder: str) -> dict[str, int]:
    """A shard folder's sizes.json, {tar file name: samples}, sorted by name.

    Raises InputError when it is missing or not a JSON object of counts.
    """
    url = sizes_json_url(shard_folder)
    if not exists(url):
        raise InputError(f"{url} not found: no shards were written to {shard_folder}")
    try:
        sizes = json.loads(read_bytes(url))
        return {str(name): int(count) for name, count in sorted(sizes.items())}
    except (ValueError, TypeError, AttributeError) as err:
        raise InputError(f"{url} is not a sizes.json of shard counts: {err}") from err


def read_shard_index(shard_folder: str) -> list[ShardEntry]:
    """Every shard of a folder (one split), in name order, from its sizes.json."""
    folder = shard_folder.rstrip("/")
    return [
        ShardEntry(f"{folder}/{name}", name, count, shard_marker_url(f"{folder}/{name}"))
        for name, count in read_sizes(folder).items()
    ]


def shard_entries(urls: Sequence[str]) -> list[ShardEntry]:
    """The index entries of given shard URLs, each from the sizes.json of its own folder.

    Raises InputError when a URL is not listed there.
    """
    by_folder: dict[str, dict[str, ShardEntry]] = {}
    entries = []
    for url in urls:
        folder, _, name = url.rpartition("/")
        if folder not in by_folder:
            by_folder[folder] = {e.name: e for e in read_shard_index(folder)}
        if name not in by_folder[folder]:
            raise InputError(f"shard {url} is not listed in {sizes_json_url(folder)}")
        entry = by_folder[folder][name]
        entries.append(ShardEntry(url, name, entry.samples, entry.marker_url))
    return entries


def read_shard_marker(tar_url: str) -> dict | None:
    """The completion marker of a shard tar, or None when it is absent or not valid JSON."""
    url = shard_marker_url(tar_url)
    if not exists(url):
        return None
    try:
        marker = json.loads(read_bytes(url))
    except ValueError:  # a marker from some other writer: treat the shard as incomplete
        return None
    return marker if isinstance(marker, dict) else None
