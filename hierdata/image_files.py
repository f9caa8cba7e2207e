"""Source image files: the --images path template, the launcher's probe, bounded typed reads.

Every read is bounded: only regular files are read (a directory, device, FIFO or socket, also
behind a symlink, is a reject, never opened for reading), at most `max_bytes` bytes are read
(a larger file is a reject), and a remote read that takes longer than `timeout` seconds is a
reject. Each failure is an ImageError with its reason, recorded per image while the run goes on.
"""

import os
import stat
import string
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import fsspec.asyn
import fsspec.config
from fsspec.implementations.local import LocalFileSystem

from hierdata.errors import InputError
from hierdata.io import filesystem

IMAGE_FIELDS = ("input", "split", "image_id")
# Reasons of an image that cannot be used (tables/rejects "reason", run.json "image_rejects").
IMAGE_REJECT_REASONS = (
    "image_missing",  # no such file
    "image_not_regular_file",  # a directory, device, FIFO or socket (or a link to one)
    "image_too_large",  # more bytes than --max_image_mib
    "image_timeout",  # a remote read took longer than --image_timeout
    "image_unreadable",  # the store refused the read (permissions, network)
    "image_truncated",  # empty, or the data ends before the image does
    "image_corrupt",  # not a decodable image
    "image_unsupported",  # a format, mode or size with no correct 8-bit RGB form
)

_T = TypeVar("_T")


class ImageError(Exception):
    """A source image that cannot be used: recorded with its reason, never a crash.

    `reason` is one of IMAGE_REJECT_REASONS; `detail` says what was found.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def reject_row(self, split: str, url: str, image_id: str) -> dict:
        """This error as a schemas.REJECTS row: file = the image URL, line 0, raw = "ID: detail"
        cut to 1000 characters."""
        raw = f"{image_id}: {self.detail}"[:1000]
        return {"split": split, "file": url, "line": 0, "reason": self.reason, "raw": raw}


def use_anonymous_s3(anonymous: bool) -> None:
    """With `anonymous`, every s3:// filesystem this process makes afterwards is unsigned.

    fsspec applies its per-protocol config to each filesystem it creates (and keys its cache
    on it), so the launcher and every worker call this once with the run's --s3_anonymous; the
    endpoint and credentials otherwise come from the usual AWS settings (AWS_ENDPOINT_URL_S3,
    AWS_ACCESS_KEY_ID, ~/.aws).
    """
    if anonymous:
        fsspec.config.conf.setdefault("s3", {})["anon"] = True


def check_image_template(template: str) -> None:
    """Refuse an --images template that cannot name one file per image.

    Only the placeholders {input}, {split} and {image_id} are allowed, without format specs or
    conversions, and {image_id} is required: without it every sample would be cut from the
    same file.

    Raises:
        InputError: one line naming the template and what is wrong with it.
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:  # an unmatched brace
        raise InputError(f"--images {template!r}: {err}") from err
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in IMAGE_FIELDS:
            raise InputError(
                f"--images {template!r}: unknown placeholder {{{name}}}; use "
                + ", ".join(f"{{{field}}}" for field in IMAGE_FIELDS)
            )
        if spec or conversion:
            raise InputError(f"--images {template!r}: placeholders take no format spec")
        names.append(name)
    if "image_id" not in names:
        raise InputError(
            f"--images {template!r} must contain {{image_id}}: without it every sample would be "
            "cut from the same file"
        )


def image_url(template: str, input_root: str, split: str, image_id: str) -> str:
    """The source image's URL from the --images template ({input}, {split}, {image_id})."""
    return template.format(input=input_root.rstrip("/"), split=split, image_id=image_id)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def _too_large(url: str, size: int, max_bytes: int) -> ImageError:
    return ImageError("image_too_large", f"{url}: more than {max_bytes} bytes ({size})")


def _read_local(path: str, max_bytes: int) -> bytes:
    """A local file's bytes, regular files only, at most max_bytes (else ImageError)."""
    try:
        status = os.stat(path)  # follows symlinks: a link to /dev/zero is a device
    except (FileNotFoundError, NotADirectoryError) as err:
        raise ImageError("image_missing", f"no such file: {path}") from err
    except OSError as err:  # permissions, a symlink loop, a name too long
        raise ImageError("image_unreadable", f"{path}: {err.strerror or err}") from err
    if not stat.S_ISREG(status.st_mode):
        raise ImageError("image_not_regular_file", f"{path} is a {_kind(status.st_mode)}")
    if status.st_size > max_bytes:
        raise _too_large(path, status.st_size, max_bytes)
    try:
        # O_NONBLOCK: if the name was swapped for a FIFO since the stat, opening cannot hang;
        # fstat of the open descriptor then sees what was really opened.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as err:
        raise ImageError("image_missing", f"no such file: {path}") from err
    except OSError as err:
        raise ImageError("image_unreadable", f"{path}: {err.strerror or err}") from err
    with open(descriptor, "rb") as handle:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise ImageError("image_not_regular_file", f"{path} is a {_kind(mode)}")
        data = handle.read(max_bytes + 1)  # one byte more tells a file that grew past the cap
    if len(data) > max_bytes:
        raise _too_large(path, len(data), max_bytes)
    return data


def _call_with_timeout(
    fs: fsspec.AbstractFileSystem, method: str, timeout: float, *args: Any, **kwargs: Any
) -> Any:
    """fs.method(*args) within `timeout` seconds, else TimeoutError.

    Async filesystems (gcsfs, s3fs, http) run the coroutine on their loop with fsspec's own
    timeout, which cancels it. A synchronous backend runs in a daemon thread that is abandoned
    after the timeout: the worker goes on, and the read holds at most max_bytes meanwhile.
    """
    if getattr(fs, "async_impl", False):
        # fsspec's FSTimeoutError is a TimeoutError.
        return fsspec.asyn.sync(
            fs.loop, getattr(fs, f"_{method}"), *args, timeout=timeout, **kwargs
        )
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = getattr(fs, method)(*args, **kwargs)
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer in {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _remote(url: str, timeout: float, call: Callable[[], _T]) -> _T:
    """Run one remote step, turning the store's failures into ImageErrors."""
    try:
        return call()
    except FileNotFoundError as err:
        raise ImageError("image_missing", f"no such file: {url}") from err
    except TimeoutError as err:
        raise ImageError("image_timeout", f"{url}: {err}") from err
    except Exception as err:  # any backend's own errors; the image reject bound counts them
        raise ImageError("image_unreadable", f"{url}: {type(err).__name__}: {err}") from err


def _read_remote(
    fs: fsspec.AbstractFileSystem, url: str, path: str, max_bytes: int, timeout: float
) -> bytes:
    info = _remote(url, timeout, lambda: _call_with_timeout(fs, "info", timeout, path))
    if info.get("type") != "file":
        raise ImageError("image_not_regular_file", f"{url} is a {info.get('type') or 'non-file'}")
    size = info.get("size")
    if size is not None and int(size) > max_bytes:
        raise _too_large(url, int(size), max_bytes)
    data = _remote(
        url,
        timeout,
        lambda: _call_with_timeout(fs, "cat_file", timeout, path, start=0, end=max_bytes + 1),
    )
    if len(data) > max_bytes:
        raise _too_large(url, len(data), max_bytes)
    return bytes(data)


def read_image_file(url: str, max_bytes: int, timeout: float) -> bytes:
    """The bytes of one image file (local path or fsspec URL), read within bounds.

    Args:
        url: the file.
        max_bytes: a larger file is rejected without reading more than max_bytes + 1 bytes.
        timeout: seconds allowed for each remote call (local reads need none: only regular
            files are opened).
    Raises:
        ImageError: image_missing, image_not_regular_file, image_too_large, image_timeout or
            image_unreadable.
    """
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        return _read_local(path, max_bytes)
    return _read_remote(fs, url, path, max_bytes, timeout)


def is_image_file(url: str, timeout: float) -> bool:
    """Whether `url` names a regular file (the probe's question); missing, not a file or no
    answer within `timeout` seconds is False."""
    fs, path = filesystem(url)
    try:
        if isinstance(fs, LocalFileSystem):
            return stat.S_ISREG(os.stat(path).st_mode)
        info = _call_with_timeout(fs, "info", timeout, path)
    except (OSError, TimeoutError, ValueError):
        return False
    return info.get("type") == "file"


@dataclass(frozen=True)
class ProbeResult:
    """What the launcher's image probe found for one split."""

    split: str
    checked: tuple[str, ...]  # the image URLs looked at
    missing: tuple[str, ...]  # those that are not regular files


def probe_split(
    template: str, input_root: str, split: str, image_ids: Sequence[str], timeout: float
) -> ProbeResult:
    """Look for the image files of a few image ids of one split.

    Args:
        template, input_root: as for image_url.
        image_ids: the ids to look for (the launcher takes the first ones of the CSV).
        timeout: seconds allowed per remote lookup.
    """
    urls = tuple(image_url(template, input_root, split, image_id) for image_id in image_ids)
    missing = tuple(url for url in urls if not is_image_file(url, timeout))
    return ProbeResult(split, urls, missing)
