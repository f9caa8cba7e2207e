"""Shard writing (DESIGN "Shards"): stable shard ids, sorted samples, fixed tar headers, atomic
publishing with the marker last, sizes.json."""

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pytest
import webdataset as wds
from fsspec.implementations.local import LocalFileOpener
from fsspec.implementations.memory import MemoryFileSystem

from hierdata import shards
from hierdata.errors import InputError
from hierdata.outputs import read_sizes
from hierdata.shards import (
    build_tar,
    encode_sample,
    shard_count,
    shard_of,
    split_summary,
    write_shard,
    write_sizes,
)
from schemas.layout import OutputLayout
from schemas.sample import FIXED_MTIME


def _metadata(image_id: str, boxes: int, cross: int) -> dict:
    return {
        "image_id": image_id,
        "split": "validation",
        "width": 640,
        "height": 480,
        "labels": ["/m/01"],
        "boxes": [
            {
                "key": f"b{i:03d}",
                "box_id": i,
                "label": "/m/01",
                "xmin": 0.1,
                "xmax": 0.5,
                "ymin": 0.2,
                "ymax": 0.6,
                "is_group_of": 0,
            }
            for i in range(boxes)
        ],
        "cross": [
            {"key": f"x{i:03d}", "label": "/m/01", "source_image_id": "other", "source_box_id": i}
            for i in range(cross)
        ],
        "pairs": [
            {"parent": "img", "child": f"b{i:03d}", "kind": "image_box"} for i in range(boxes)
        ],
    }


def _sample(image_id: str, boxes: int = 2, cross: int = 1) -> tuple[str, dict[str, bytes]]:
    crops = {"img": f"jpeg of {image_id}".encode()}
    crops.update({f"b{i:03d}": f"{image_id} box {i}".encode() for i in range(boxes)})
    crops.update({f"x{i:03d}": f"{image_id} cross {i}".encode() for i in range(cross)})
    return image_id, encode_sample(image_id, crops, _metadata(image_id, boxes, cross))


SAMPLES = [_sample("c3"), _sample("a1", boxes=0, cross=0), _sample("b2", boxes=3, cross=2)]


@pytest.mark.parametrize(
    ("n_samples", "per_shard", "expected"),
    [(0, 1000, 1), (1, 1000, 1), (1000, 1000, 1), (1001, 1000, 2), (1_900_000, 1000, 1900)],
)
def test_shard_count_is_ceil_and_at_least_one(
    n_samples: int, per_shard: int, expected: int
) -> None:
    assert shard_count(n_samples, per_shard) == expected


def test_shard_of_is_a_fixed_hash_of_the_key() -> None:
    keys = ["07988525d97edf50", "0c7b2e492da6ba02", "000002b66c9c498e", "a"]
    # blake2b(key, digest_size=8) read little-endian, mod 1000: pinned so no release changes it.
    assert shard_of(keys, 1000).tolist() == [390, 9, 409, 928]
    expected = int.from_bytes(hashlib.blake2b(b"a", digest_size=8).digest(), "little") % 7
    assert shard_of(["a"], 7)[0] == expected
    assert shard_of(pa.array(keys), 1000).tolist() == shard_of(keys, 1000).tolist()
    assert shard_of(pa.chunked_array([keys[:2], keys[2:]]), 1000).tolist() == [390, 9, 409, 928]


def test_shard_of_spreads_keys_evenly() -> None:
    counts = np.bincount(shard_of([f"{i:016x}" for i in range(20_000)], 10), minlength=10)
    assert counts.min() > 1800 and counts.max() < 2200  # binomial sd ~42 around 2000


def test_encode_sample_names_entries_and_writes_compact_sorted_json() -> None:
    key, sample = _sample("b2", boxes=3, cross=2)
    assert sample["__key__"] == b"b2"
    assert sorted(sample) == sorted(
        ["__key__", "img.jpg", "b000.jpg", "b001.jpg", "b002.jpg", "x000.jpg", "x001.jpg", "json"]
    )
    text = sample["json"].decode()
    assert text == json.dumps(_metadata("b2", 3, 2), sort_keys=True, separators=(",", ":"))
    assert ": " not in text and text.index('"boxes"') < text.index('"cross"')


@pytest.mark.parametrize(
    ("crops", "metadata", "match"),
    [
        ({"img": b"i", "b000": b"b"}, _metadata("k", 2, 0), "names crops"),  # b001 missing
        ({"img": b"i", "b000": b"b", "b001": b"b"}, _metadata("k", 1, 0), "names crops"),
        ({"b000": b"b"}, _metadata("k", 1, 0), "missing"),
        ({"img": b"i", "crop7": b"c"}, _metadata("k", 0, 0), "invalid"),
        ({"img": b"i"}, {**_metadata("k", 0, 0), "width": float("nan")}, "JSON"),
    ],
)
def test_encode_sample_rejects_crops_the_metadata_does_not_name(
    crops: dict, metadata: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        encode_sample("k", crops, metadata)


@pytest.mark.parametrize("image_id", ["a.b", "a/b", "", "x" * 129, "a b"])
def test_sample_keys_follow_the_image_id_rule(image_id: str) -> None:
    with pytest.raises(ValueError, match="1-128"):
        build_tar([(image_id, {"json": b"{}"})])


def test_build_tar_is_byte_identical_for_any_input_order() -> None:
    first = build_tar(SAMPLES)
    assert build_tar(list(reversed(SAMPLES))) == first
    shuffled_entries = [(key, dict(reversed(list(entries.items())))) for key, entries in SAMPLES]
    assert build_tar(shuffled_entries) == first


def test_tar_members_are_sorted_with_fixed_headers() -> None:
    with tarfile.open(fileobj=io.BytesIO(build_tar(SAMPLES))) as tar:
        members = tar.getmembers()
    names = [member.name for member in members]
    assert names == [
        "a1.img.jpg", "a1.json",
        "b2.img.jpg", "b2.b000.jpg", "b2.b001.jpg", "b2.b002.jpg", "b2.x000.jpg", "b2.x001.jpg",
        "b2.json",
        "c3.img.jpg", "c3.b000.jpg", "c3.b001.jpg", "c3.x000.jpg", "c3.json",
    ]  # fmt: skip
    for member in members:
        assert (member.mtime, member.uid, member.gid) == (FIXED_MTIME, 0, 0)
        assert (member.uname, member.gname, member.mode) == ("", "", 0o644)
        assert member.isfile()


def test_box_entries_sort_by_number_past_999() -> None:
    entries = {"json": b"{}", "b1000.jpg": b"", "b999.jpg": b"", "img.jpg": b"", "x000.jpg": b""}
    with tarfile.open(fileobj=io.BytesIO(build_tar([("k", entries)]))) as tar:
        assert tar.getnames() == ["k.img.jpg", "k.b999.jpg", "k.b1000.jpg", "k.x000.jpg", "k.json"]


@pytest.mark.parametrize(
    ("samples", "match"),
    [
        ([("a", {"json": b"1"}), ("a", {"json": b"2"})], "duplicate"),
        ([("a", {"__key__": b"b", "json": b"1"})], "__key__"),
        ([("a", {"img.png": b"1"})], "unexpected"),
    ],
)
def test_build_tar_rejects_inconsistent_samples(samples: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_tar(samples)


def test_webdataset_reads_back_every_sample(tmp_path: Path) -> None:
    layout = OutputLayout(str(tmp_path))
    write_shard(layout, "validation", 3, SAMPLES)
    dataset = wds.WebDataset(layout.shard_tar("validation", 3), shardshuffle=False)
    read = {sample["__key__"]: sample for sample in dataset}
    assert list(read) == ["a1", "b2", "c3"]
    for key, entries in SAMPLES:
        got = {name: value for name, value in read[key].items() if not name.startswith("__")}
        expected = {name: value for name, value in entries.items() if name != "__key__"}
        assert got == expected


def test_marker_is_written_last_and_describes_the_tar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = OutputLayout(str(tmp_path / "out"))
    order: list[str] = []
    publish = shards.publish

    def recording_publish(url: str, data: bytes) -> None:
        order.append(url)
        publish(url, data)

    monkeypatch.setattr(shards, "publish", recording_publish)
    marker = write_shard(layout, "train", 7, SAMPLES)
    assert order == [layout.shard_tar("train", 7), layout.shard_marker("train", 7)]
    data = Path(layout.shard_tar("train", 7)).read_bytes()
    assert json.loads(Path(layout.shard_marker("train", 7)).read_text()) == marker
    assert marker == {
        "shard": 7,
        "tar": "train-000007.tar",
        "samples": 3,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "keys_first": "a1",
        "keys_last": "c3",
    }
    assert data == build_tar(SAMPLES)
    assert sorted(os.listdir(tmp_path / "out" / "shards" / "train")) == [
        "train-000007.json",
        "train-000007.tar",
    ]  # no temporary files left behind


def test_rerun_with_same_samples_uploads_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = OutputLayout(str(tmp_path))
    first = write_shard(layout, "train", 0, SAMPLES)
    uploads: list[str] = []
    monkeypatch.setattr(shards, "publish", lambda url, data: uploads.append(url))
    assert write_shard(layout, "train", 0, list(reversed(SAMPLES))) == first
    assert uploads == []


def test_crash_during_tar_upload_leaves_no_tar_and_no_stale_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = OutputLayout(str(tmp_path))
    write_shard(layout, "train", 0, SAMPLES)  # a previous run's complete shard
    tar_path = Path(layout.shard_tar("train", 0))
    tar_path.unlink()  # ... whose tar is gone, so the rerun must upload

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the bytes are written, then it fails
    with pytest.raises(OSError, match="No space"):
        write_shard(layout, "train", 0, SAMPLES[:2])
    assert not tar_path.exists()
    assert not Path(layout.shard_marker("train", 0)).exists()  # the old marker is gone too
    assert os.listdir(tar_path.parent) == []  # the temporary file is cleaned up


def test_fsspec_local_pipe_file_alone_would_leave_a_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why publish() renames on local disks: pipe_file writes straight into the final name.
    def write_half_then_die(self: LocalFileOpener, data: bytes) -> int:
        self.f.write(data[: len(data) // 2])
        raise OSError("killed")

    monkeypatch.setattr(LocalFileOpener, "write", write_half_then_die)
    target = tmp_path / "x.tar"
    with pytest.raises(OSError, match="killed"):
        fsspec.filesystem("file").pipe_file(str(target), b"0123456789")
    assert target.read_bytes() == b"01234"
    shards.publish(str(tmp_path / "y.tar"), b"0123456789")  # ours does not go through it
    assert (tmp_path / "y.tar").read_bytes() == b"0123456789"


def test_memory_filesystem_shards_and_failed_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    layout = OutputLayout("memory://shard-test")
    marker = write_shard(layout, "validation", 1, SAMPLES)
    fs = fsspec.filesystem("memory")
    data = fs.cat_file(layout.shard_tar("validation", 1).removeprefix("memory://"))
    assert data == build_tar(SAMPLES) and marker["sha256"] == hashlib.sha256(data).hexdigest()

    def upload_fails(self, path, value, **kwargs):
        raise ConnectionError("connection reset during upload")

    monkeypatch.setattr(MemoryFileSystem, "pipe_file", upload_fails)
    with pytest.raises(ConnectionError):
        write_shard(layout, "validation", 2, SAMPLES)
    assert not fs.exists(layout.shard_tar("validation", 2).removeprefix("memory://"))
    assert not fs.exists(layout.shard_marker("validation", 2).removeprefix("memory://"))
    fs.rm("/shard-test", recursive=True)


def test_sizes_json_maps_tar_names_to_counts(tmp_path: Path) -> None:
    layout = OutputLayout(str(tmp_path))
    markers = [
        write_shard(layout, "train", 1, SAMPLES[:1]),
        write_shard(layout, "train", 0, SAMPLES[1:]),
    ]
    write_sizes(layout, "train", markers)
    assert read_sizes(layout.shards_dir("train")) == {"train-000000.tar": 2, "train-000001.tar": 1}
    assert [m["tar"] for m in markers] == ["train-000001.tar", "train-000000.tar"]
    assert split_summary(markers) == {
        "shards": 2,
        "samples": 3,
        "bytes": sum(Path(layout.shard_tar("train", i)).stat().st_size for i in (0, 1)),
    }
    assert split_summary([]) == {"shards": 0, "samples": 0, "bytes": 0}
    text = Path(layout.shard_sizes("train")).read_text()
    assert text.index("train-000000") < text.index("train-000001")
    with pytest.raises(ValueError, match="two markers"):
        write_sizes(layout, "train", [markers[0], markers[0]])
    with pytest.raises(InputError):
        read_sizes(layout.shards_dir("validation"))


def test_empty_shard_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no samples"):
        write_shard(OutputLayout(str(tmp_path)), "train", 0, [])
