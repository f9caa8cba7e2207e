"""Shard samples as rows of one fixed schema, for Hugging Face `datasets`, polars or duckdb.

A sample holds a different number of bNNN/xNNN crops per image, so a reader that makes one
column per tar member (`load_dataset("webdataset")`) sees different types per sample; here
the crops are one list column instead. No second copy of the shards is written: rows are read
from the tars as they are (see README "Hugging Face datasets").
"""

import json
import tarfile
from collections.abc import Iterator, Sequence

import pyarrow as pa

from hierdata import io
from hierdata.outputs import read_shard_index

CROP = pa.struct([pa.field("key", pa.string()), pa.field("jpeg", pa.binary())])
# One row per sample (source image). `metadata` is the sample's JSON (schemas.sample) as text;
# `labels` and `label_names` are copied out of it for filtering without parsing JSON.
SAMPLE_ROW = pa.schema(
    [
        pa.field("image_id", pa.string()),
        pa.field("split", pa.string()),
        pa.field("labels", pa.list_(pa.string())),
        pa.field("label_names", pa.list_(pa.string())),
        pa.field("metadata", pa.string()),
        pa.field("image", pa.binary()),  # img.jpg: the whole image
        pa.field("crops", pa.list_(CROP)),  # bNNN (own boxes) then xNNN (cross-image), by key
    ]
)


def _row(key: str, members: dict[str, bytes]) -> dict:
    metadata = json.loads(members["json"])
    crops = [
        {"key": name.removesuffix(".jpg"), "jpeg": data}
        for name, data in sorted(members.items())
        if name.endswith(".jpg") and name != "img.jpg"
    ]
    return {
        "image_id": key,
        "split": metadata["split"],
        "labels": metadata["labels"],
        "label_names": metadata.get("label_names", metadata["labels"]),
        "metadata": members["json"].decode(),
        "image": members["img.jpg"],
        "crops": crops,
    }


def sample_rows(urls: Sequence[str]) -> Iterator[dict]:
    """SAMPLE_ROW dicts of every sample in the shard tars `urls`, in order.

    Each tar is read in one sequential pass (local path or fsspec URL); a sample's members
    are consecutive in it (hierdata.shards.build_tar).
    """
    for url in urls:
        fs, path = io.filesystem(url)
        with fs.open(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r|") as tar:
            key, members = None, {}
            for member in tar:
                extracted = tar.extractfile(member)
                if extracted is None:
                    continue
                sample, _, entry = member.name.partition(".")
                if sample != key and key is not None:
                    yield _row(key, members)
                    members = {}
                key = sample
                members[entry] = extracted.read()
            if key is not None:
                yield _row(key, members)


def split_shards(shard_folder: str) -> list[str]:
    """The shard tars of one split folder (OUTPUT/shards/SPLIT), from its sizes.json."""
    return [entry.url for entry in read_shard_index(shard_folder)]
