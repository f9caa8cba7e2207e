"""Readers for a run's outputs: the Parquet tables under OUTPUT/tables and run.json.

Every consumer (tests, trees, audit, training) reads tables through here, typed by schemas/.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from hierdata.errors import InputError
from hierdata.io import filesystem
from schemas import TABLE_SCHEMAS, OutputLayout


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
            parts.append(pq.read_table(handle, schema=schema))
    return pa.concat_tables(parts).cast(schema)


def read_run_record(root: str) -> dict:
    fs, path = filesystem(OutputLayout(root).run_json)
    if not fs.exists(path):
        raise InputError(f"no run.json under {root}: not a pipeline output, or the run failed")
    with fs.open(path, "rb") as handle:
        return json.load(handle)
