"""WebDataset shards, deterministic and atomic: shard ids, sample encoding, tar bytes, publishing.

The TFDS BeamWriter pattern: count samples, assign shard ids by a stable hash of the key, sort.

Determinism. A shard's bytes depend only on its samples: samples sorted by key, entries in a
fixed order, every tar header field fixed (mtime FIXED_MTIME, uid/gid 0, empty user and group
names, mode 0644, PAX format), metadata JSON with sorted keys. So the same input gives
byte-identical shards on any runner and worker count (the JPEG bytes themselves are as
deterministic as the pinned Pillow/libjpeg build).

Atomicity. Each tar is built in memory and published with one call, then its marker
`{shard}.json` (samples, bytes, sha256, first and last key) is written last: a shard is
complete exactly when its marker exists and matches. On object stores (gs://, s3://,
memory://) one `pipe_file` call creates the object only when the upload finishes. fsspec's
LocalFileSystem.pipe_file, however, opens the final path and writes into it, so a killed
worker would leave a partial tar under the final name (img2dataset's failure); on local disks
we therefore write a hidden temporary file in the same folder, fsync it and `os.replace` it
onto the final name, which is atomic on POSIX filesystems (a killed writer can leave only a
hidden `.NAME.*.tmp`, which no `*.tar` pattern matches). A retried or duplicated bundle writes
the same bytes, so two writers of one shard racing is harmless.
"""

import hashlib
import io
import json
import posixpath
import re
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from hierdata.io import exists, filesystem, size
from hierdata.io import write_bytes as publish  # one whole file at once (atomic rename locally)
from hierdata.outputs import read_shard_marker
from schemas.layout import MARKER_SUFFIX, SHARD_SUFFIX, OutputLayout
from schemas.sample import FIXED_MTIME, ROOT_KEY
from schemas.tables import IMAGE_ID_PATTERN

KEY_ENTRY = "__key__"
_KEY = re.compile(IMAGE_ID_PATTERN)  # a sample key is an ImageID: a file name and WebDataset key
# Tar entry names inside a sample, in their fixed order: img.jpg, bNNN.jpg, xNNN.jpg, json.
_ENTRY = re.compile(rf"(?P<root>{ROOT_KEY})\.jpg|(?P<kind>[bx])(?P<index>[0-9]{{3,}})\.jpg|json")
_ENTRY_RANK = {"b": 1, "x": 2}
_CROP_KEY = re.compile(rf"{ROOT_KEY}|[bx][0-9]{{3,}}")


def shard_count(n_samples: int, samples_per_shard: int) -> int:
    """Number of shards for a split: ceil(n_samples / samples_per_shard), at least 1."""
    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    return max(1, -(-n_samples // samples_per_shard))


def shard_of(keys: Sequence[str] | pa.Array | pa.ChunkedArray, n_shards: int) -> np.ndarray:
    """(N,) int64 shard id of each key: the first 8 bytes of blake2b(key), little-endian, mod n.

    A fixed, specified hash (not Python's salted hash() nor a library's unversioned one), so
    the assignment is the same on every machine and release. Shards get about
    n_samples / n_shards samples each (binomial spread), not exactly equal counts. Hashing is
    one call per image key, not per box: about 2 s for all 1.9M Open Images images.
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    if isinstance(keys, pa.Array | pa.ChunkedArray):
        if keys.null_count:
            raise ValueError("shard keys must not be null")
        keys = keys.to_pylist()
    digests = b"".join(hashlib.blake2b(key.encode(), digest_size=8).digest() for key in keys)
    return (np.frombuffer(digests, dtype="<u8") % np.uint64(n_shards)).astype(np.int64)


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise ValueError(f"sample key {key!r} is not 1-128 characters of [A-Za-z0-9_-]")


def encode_sample(
    image_id: str, entries: Mapping[str, bytes], metadata: Mapping[str, Any]
) -> dict[str, bytes]:
    """One WebDataset sample: "__key__", "img.jpg", "bNNN.jpg", "xNNN.jpg" and "json".

    Args:
        image_id: the sample key (validated ImageID).
        entries: crop key ("img", "bNNN", "xNNN") -> JPEG bytes, as render_crops returns them
            (cross-image crops re-keyed to xNNN); "img" is required.
        metadata: the sample's JSON object (schemas.sample.SAMPLE_METADATA); the crops it names
            in "boxes" and "cross" must be exactly the entries besides "img".
    Returns:
        {"__key__": image_id as ASCII bytes, "{crop key}.jpg": JPEG, "json": compact JSON with
        sorted keys}.
    """
    _check_key(image_id)
    bad = sorted(key for key in entries if not _CROP_KEY.fullmatch(key))
    if bad or ROOT_KEY not in entries:
        raise ValueError(f"sample {image_id}: crop keys {bad} invalid or {ROOT_KEY!r} missing")
    named = {item["key"] for item in [*metadata["boxes"], *metadata["cross"]]}
    if named != set(entries) - {ROOT_KEY}:
        raise ValueError(
            f"sample {image_id}: metadata names crops {sorted(named)}, "
            f"entries are {sorted(set(entries) - {ROOT_KEY})}"
        )
    # allow_nan=False: NaN/Infinity are not JSON and break strict readers.
    text = json.dumps(metadata, sort_keys=True, separators=(",", ":"), allow_nan=False)
    sample = {KEY_ENTRY: image_id.encode("ascii")}
    sample.update({f"{key}.jpg": data for key, data in entries.items()})
    sample["json"] = text.encode("utf-8")
    return sample


def _entry_order(name: str) -> tuple[int, int, str]:
    match = _ENTRY.fullmatch(name)
    if match is None:
        raise ValueError(
            f"unexpected sample entry {name!r}; expected img.jpg, bNNN.jpg, xNNN.jpg or json"
        )
    if match["root"]:
        return 0, 0, name
    if match["kind"]:
        # By number, not by name: b1000 comes after b999.
        return _ENTRY_RANK[match["kind"]], int(match["index"]), name
    return 3, 0, name


def _member(name: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = FIXED_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_tar(samples: Iterable[tuple[str, Mapping[str, bytes]]]) -> bytes:
    """The bytes of one shard tar, identical for identical samples in any order.

    Args:
        samples: (key, entries) per sample; entries map entry names ("img.jpg", "bNNN.jpg",
            "xNNN.jpg", "json") to bytes and may carry "__key__" (it must equal key), so
            encode_sample's output can be passed as is.
    Returns:
        A PAX tar with members "{key}.{entry}", samples sorted by key, entries in the order
        img.jpg, bNNN.jpg by number, xNNN.jpg by number, json.
    """
    ordered = sorted(samples, key=lambda sample: sample[0])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        previous = None
        for key, entries in ordered:
            _check_key(key)
            if key == previous:
                raise ValueError(f"duplicate sample key {key!r} in one shard")
            previous = key
            stated = entries.get(KEY_ENTRY)
            if stated is not None and stated not in (key, key.encode("ascii")):
                raise ValueError(f"sample {key!r} carries __key__ {stated!r}")
            names = sorted((name for name in entries if name != KEY_ENTRY), key=_entry_order)
            for name in names:
                data = entries[name]
                tar.addfile(_member(f"{key}.{name}", data), io.BytesIO(data))
    return buffer.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_shard(
    layout: OutputLayout,
    split: str,
    shard: int,
    samples: Iterable[tuple[str, Mapping[str, bytes]]],
    run_fingerprint: str | None = None,
) -> dict:
    """Build one shard, publish its tar, then its completion marker; returns the marker.

    Args:
        layout: the output root.
        split, shard: which shard (named by layout.shard_tar_name; marker beside the tar).
        samples: (key, entries) as for build_tar; at least one.
        run_fingerprint: run.json's "fingerprint", recorded in the marker as "run" so that a
            consumer can tell shards of different runs apart (evaluation refuses to mix them).
    Returns:
        The marker: {"shard", "tar", "samples", "bytes", "sha256", "keys_first", "keys_last"},
        and "run" when a fingerprint was given.

    A rerun that finds a marker and tar matching the new bytes uploads nothing (idempotent). A
    marker that does not match is removed before the new tar goes up, so no marker ever
    vouches for a tar it does not describe.
    """
    samples = list(samples)
    if not samples:
        raise ValueError(f"shard {split}/{shard} has no samples")
    data = build_tar(samples)
    keys = sorted(key for key, _ in samples)
    marker = {
        "shard": shard,
        "tar": layout.shard_tar_name(split, shard),
        "samples": len(samples),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "keys_first": keys[0],
        "keys_last": keys[-1],
    }
    if run_fingerprint is not None:
        marker["run"] = run_fingerprint
    tar_url, marker_url = layout.shard_tar(split, shard), layout.shard_marker(split, shard)
    previous = read_shard_marker(tar_url)
    if previous == marker and exists(tar_url) and size(tar_url) == len(data):
        return marker
    if previous is not None or exists(marker_url):
        fs, path = filesystem(marker_url)
        fs.rm_file(path)
    publish(tar_url, data)
    publish(marker_url, _json_bytes(marker))
    return marker


def write_sizes(layout: OutputLayout, split: str, markers: Iterable[Mapping[str, Any]]) -> None:
    """Write sizes.json for a split: {shard tar file name: sample count}, sorted by name."""
    sizes: dict[str, int] = {}
    for marker in markers:
        name = layout.shard_tar_name(split, int(marker["shard"]))
        if name in sizes:
            raise ValueError(f"two markers for shard {name}")
        sizes[name] = int(marker["samples"])
    publish(layout.shard_sizes(split), _json_bytes(dict(sorted(sizes.items()))))


def _is_temporary(name: str) -> bool:
    """A hidden temporary file of hierdata.io.write_bytes (left by a killed writer)."""
    return name.startswith(".") and name.endswith(".tmp")


def remove_temporaries(folder: str) -> list[str]:
    """Remove the hidden temporary files a killed write left in `folder`; returns their names."""
    fs, path = filesystem(folder)
    if not fs.isdir(path):
        return []
    removed = []
    for entry in fs.ls(path, detail=False):
        name = posixpath.basename(entry.rstrip("/"))
        if _is_temporary(name):
            fs.rm_file(entry)
            removed.append(name)
    return sorted(removed)


def sweep_split(layout: OutputLayout, split: str, current: Iterable[str]) -> list[str]:
    """Remove what this run's sharding of a split did not write: tars and markers of shard
    names not in `current` (an earlier run with another --samples_per_shard), and temporary
    files; sizes.json stays. Returns the removed file names.

    Call it only once every shard of the split is written (after sizes.json).
    """
    keep = set(current)
    keep |= {name[: -len(SHARD_SUFFIX)] + MARKER_SUFFIX for name in keep}
    fs, folder = filesystem(layout.shards_dir(split))
    removed = remove_temporaries(layout.shards_dir(split))
    for entry in fs.ls(folder, detail=False):
        name = posixpath.basename(entry.rstrip("/"))
        ours = name.startswith(f"{split}-") and name.endswith((SHARD_SUFFIX, MARKER_SUFFIX))
        if ours and name not in keep:
            fs.rm_file(entry)
            removed.append(name)
    return sorted(removed)


def split_summary(markers: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """run.json's "shards" entry of a split from its markers: shards, samples and tar bytes."""
    markers = list(markers)
    return {
        "shards": len(markers),
        "samples": sum(int(marker["samples"]) for marker in markers),
        "bytes": sum(int(marker["bytes"]) for marker in markers),
    }
