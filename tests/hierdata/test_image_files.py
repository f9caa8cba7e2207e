"""Image files (DESIGN "Qualities"): the --images template, bounded typed reads, the probe."""

import asyncio
import os
import time
from pathlib import Path

import fsspec
import pytest
from fsspec.asyn import AsyncFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from hierdata.errors import InputError
from hierdata.image_files import (
    ImageError,
    check_image_template,
    image_url,
    is_image_file,
    probe_split,
    read_image_file,
)

CAP = 1 << 20


@pytest.mark.parametrize(
    "template",
    ["{input}/{split}/{image_id}.jpg", "gs://bucket/images/{image_id}.jpg", "/x/{image_id}"],
)
def test_good_templates_pass(template: str) -> None:
    check_image_template(template)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{input}/{split}/photo.jpg", "must contain {image_id}"),  # the one-photo run
        ("{input}/{splt}/{image_id}.jpg", "unknown placeholder {splt}"),  # misspelt
        ("{input}/{}/{image_id}.jpg", "unknown placeholder {}"),
        ("{input}/{image_id.jpg", "expected '}'"),
        ("{input}/{image_id!r}.jpg", "no format spec"),
        ("{input}/{image_id:>20}.jpg", "no format spec"),
    ],
)
def test_bad_templates_are_one_line_input_errors(template: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("{", r"\{").replace("}", r"\}")) as caught:
        check_image_template(template)
    assert template in str(caught.value) and "\n" not in str(caught.value)


def test_image_url_expands_the_template() -> None:
    assert image_url("{input}/{split}/{image_id}.jpg", "gs://b/oi/", "train", "abc") == (
        "gs://b/oi/train/abc.jpg"
    )


def _reason(url: str, max_bytes: int = CAP, timeout: float = 5.0) -> str:
    with pytest.raises(ImageError) as caught:
        read_image_file(url, max_bytes, timeout)
    return caught.value.reason


def test_local_regular_file_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x" * 100)
    os.symlink(tmp_path / "a.jpg", tmp_path / "link.jpg")  # a link to a regular file is fine
    assert read_image_file(str(tmp_path / "a.jpg"), 100, 1.0) == b"x" * 100
    assert read_image_file(str(tmp_path / "link.jpg"), 100, 1.0) == b"x" * 100


def test_odd_entries_in_the_image_folder_are_rejects_not_crashes(tmp_path: Path) -> None:
    (tmp_path / "dir.jpg").mkdir()  # a directory named like an image: was IsADirectoryError
    os.mkfifo(tmp_path / "fifo.jpg")  # a FIFO: was a hang
    os.symlink("/dev/zero", tmp_path / "zero.jpg")  # a device: was unbounded memory
    os.symlink(tmp_path / "dir.jpg", tmp_path / "dirlink.jpg")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    (tmp_path / "file").write_bytes(b"")
    started = time.monotonic()
    assert _reason(str(tmp_path / "dir.jpg")) == "image_not_regular_file"
    assert _reason(str(tmp_path / "fifo.jpg")) == "image_not_regular_file"
    assert _reason(str(tmp_path / "zero.jpg")) == "image_not_regular_file"
    assert _reason(str(tmp_path / "dirlink.jpg")) == "image_not_regular_file"
    assert _reason(str(tmp_path / "dangling.jpg")) == "image_missing"
    assert _reason(str(tmp_path / "missing.jpg")) == "image_missing"
    assert _reason(str(tmp_path / "file" / "under-a-file.jpg")) == "image_missing"
    assert time.monotonic() - started < 5  # nothing waited on the FIFO


def test_device_reject_names_what_it_found(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    with pytest.raises(ImageError, match="character device"):
        read_image_file(str(tmp_path / "zero.jpg"), CAP, 1.0)


def test_oversize_file_is_rejected_at_the_cap(tmp_path: Path) -> None:
    (tmp_path / "big.jpg").write_bytes(b"x" * 101)
    (tmp_path / "fits.jpg").write_bytes(b"x" * 100)
    assert _reason(str(tmp_path / "big.jpg"), max_bytes=100) == "image_too_large"
    assert len(read_image_file(str(tmp_path / "fits.jpg"), 100, 1.0)) == 100  # inclusive


def test_remote_reads_are_typed_and_capped() -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe_file("/imgs/a.jpg", b"y" * 50)
    memory.pipe_file("/imgs/sub/b.jpg", b"z")
    assert read_image_file("memory://imgs/a.jpg", 50, 1.0) == b"y" * 50
    assert _reason("memory://imgs/a.jpg", max_bytes=49) == "image_too_large"
    assert _reason("memory://imgs/sub") == "image_not_regular_file"
    assert _reason("memory://imgs/none.jpg") == "image_missing"


class _SlowMemory(MemoryFileSystem):
    """A synchronous store that never answers in time."""

    protocol = "slowmemory"

    def info(self, path, **kwargs):
        time.sleep(3)
        return super().info(path, **kwargs)


class _SlowAsync(AsyncFileSystem):
    """An asynchronous store (like gcsfs or http) whose reads stall."""

    protocol = "slowasync"

    async def _info(self, path, **kwargs):
        return {"name": path, "size": 3, "type": "file"}

    async def _cat_file(self, path, start=None, end=None, **kwargs):
        await asyncio.sleep(3)
        return b"abc"


@pytest.mark.parametrize("protocol", ["slowmemory", "slowasync"])
def test_remote_read_past_the_timeout_is_a_reject(protocol: str) -> None:
    fsspec.register_implementation(
        protocol, {"slowmemory": _SlowMemory, "slowasync": _SlowAsync}[protocol], clobber=True
    )
    started = time.monotonic()
    assert _reason(f"{protocol}://x/a.jpg", timeout=0.3) == "image_timeout"
    assert time.monotonic() - started < 2.5


def test_probe_counts_missing_images(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.jpg").write_bytes(b"x")
    (tmp_path / "train" / "c.jpg").mkdir()  # not a file: the probe says missing
    result = probe_split(
        "{input}/{split}/{image_id}.jpg", str(tmp_path), "train", ["a", "b", "c"], 1.0
    )
    assert result.checked == tuple(str(tmp_path / "train" / f"{i}.jpg") for i in "abc")
    assert result.missing == (str(tmp_path / "train" / "b.jpg"), str(tmp_path / "train" / "c.jpg"))
    assert is_image_file(str(tmp_path / "train" / "a.jpg"), 1.0)
