"""fsspec helpers shared by every reader and writer: local paths, gs://, memory:// alike.

Writes go to one object in one call, so a failed run never publishes a partial file.
"""

import json
import os
import posixpath
import uuid
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from hierdata.errors import InputError


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem of a URL and the path inside it."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def join(root: str, *parts: str) -> str:
    """Join URL parts with "/" (fsspec paths are posix on every backend)."""
    return posixpath.join(root.rstrip("/"), *parts) if parts else root


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def size(url: str) -> int:
    fs, path = filesystem(url)
    try:
        return int(fs.size(path))
    except FileNotFoundError as err:
        raise InputError(f"input file not found: {url}") from err


def read_range(url: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of a file; fewer at the end of the file."""
    fs, path = filesystem(url)
    try:
        return fs.cat_file(path, start=start, end=end)
    except FileNotFoundError as err:
        raise InputError(f"input file not found: {url}") from err


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    try:
        return fs.cat_file(path)
    except FileNotFoundError as err:
        raise InputError(f"input file not found: {url}") from err


def write_bytes(url: str, data: bytes) -> None:
    """Publish a whole file at once: readers see the old file, the new one, or none.

    Object stores (gs://) commit an object in one upload call. A local pipe_file writes in
    place, so a killed run could leave half a file under the final name: on local disks write
    a temporary sibling and rename it (atomic within one filesystem).
    """
    fs, path = filesystem(url)
    parent = posixpath.dirname(path)
    if isinstance(fs, LocalFileSystem):
        if parent:
            os.makedirs(parent, exist_ok=True)
        # Hidden, so globs for *.tar or *.parquet never see it even if the process dies here.
        temporary = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                # Durable before visible: a completion marker written next never names lost data.
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        return
    fs.pipe_file(path, data)


def write_json(url: str, obj: Any) -> None:
    write_bytes(url, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def write_parquet(url: str, table: pa.Table) -> None:
    """Publish a table as one zstd-compressed Parquet file (whole, as write_bytes does)."""
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    write_bytes(url, buffer.getvalue().to_pybytes())


def check_writable(root: str) -> None:
    """Write and remove a small hidden file under `root` (creating it), so that an unwritable
    output is one clear error at launch, not a worker's traceback at the end of the run.

    Raises:
        InputError: naming the root and what the store said.
    """
    probe = join(root, f".write-probe-{uuid.uuid4().hex}")
    try:
        write_bytes(probe, b"")
        fs, path = filesystem(probe)
        fs.rm_file(path)
    except Exception as err:  # any store's refusal (OSError locally, HTTP errors remotely)
        detail = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise InputError(f"--output {root} is not writable: {detail}") from err


def remove_tree(url: str) -> None:
    """Remove a folder and everything under it; a missing folder is fine."""
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)
