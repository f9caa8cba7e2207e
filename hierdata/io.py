"""fsspec helpers shared by every reader and writer: local paths, gs://, memory:// alike.

Writes go to one object in one call, so a failed run never publishes a partial file.
"""

import json
import posixpath
from typing import Any

import fsspec

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
    """Write a whole object in one call (pipe), creating parent folders on local disks."""
    fs, path = filesystem(url)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    fs.pipe_file(path, data)


def write_json(url: str, obj: Any) -> None:
    write_bytes(url, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def remove_tree(url: str) -> None:
    """Remove a folder and everything under it; a missing folder is fine."""
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)
