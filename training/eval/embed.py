"""Embedding for evaluation: every unique crop of an eval split (whole images and their boxes)
embedded once, with labels and provenance, and cached on disk under a model + shards key.

Cache layout (any fsspec URL; schemas.training_layout.EmbeddingCacheEntry):
``{cache_dir}/{key}/crops.parquet`` (CROPS schema, one row per crop), ``embeddings.npy``
((N, D) float32, row i = crop i) and ``meta.json`` (the model and shard fingerprints, geometry,
curvature), written last as the completion marker. The key is the sha256
of the model fingerprint (a checkpoint's sha256, or a zero-shot encoder's name, weights hash and
seed), the preprocessing and each shard's content hash, so a retrained model or rebuilt shards
never read stale embeddings.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from hierdata.errors import InputError
from hierdata.io import exists, read_bytes, write_bytes, write_json
from hierdata.outputs import read_shard_marker
from hierdata.runinfo import fingerprint
from schemas.layout import SHARD_SUFFIX
from schemas.sample import ROOT_KEY
from schemas.training_layout import EmbeddingCacheEntry
from training.data import read_samples
from training.eval.models import EmbeddingModel

LOG = logging.getLogger(__name__)

# Bump when the crop table or the preprocessing changes: old cache entries are then ignored.
CACHE_VERSION = 1
IMAGE, BOX = "image", "box"
CROPS = pa.schema(
    [
        ("split", pa.string()),
        ("image_id", pa.string()),
        ("key", pa.string()),  # "img" or "bNNN": the shard entry, with image_id the crop's identity
        ("kind", pa.string()),  # IMAGE or BOX
        ("label", pa.string()),  # a box's label; null for a whole image
        ("labels", pa.list_(pa.string())),  # an image's kept-box labels (sorted); [label] for a box
        ("box_id", pa.int32()),  # -1 for a whole image
        ("area_fraction", pa.float64()),  # box area / image area (normalised coords); 1 for images
        ("is_group_of", pa.int8()),  # the box's IsGroupOf flag; 0 for images
        ("image_depth", pa.int32()),  # depth in the image's own tree: 0 image, 1 under it, ...
        ("tree_parent", pa.string()),  # parent key in the image's tree; null for a whole image
        ("shard", pa.string()),  # URL of the tar that holds the crop
    ]
)


def crop_rows(metadata: dict, shard: str) -> list[dict]:
    """The CROPS rows of one shard sample: its whole image and its kept boxes, not xNNN.

    Cross-image crops (xNNN) are other images' boxes of the same split, so they are embedded
    once under their source image instead (training.pairs "Crop identity").
    """
    boxes = metadata["boxes"]
    parent = {box["key"]: box.get("tree_parent") or ROOT_KEY for box in boxes}
    depth = {ROOT_KEY: 0}

    def depth_of(key: str) -> int:
        # Per-image trees are a few levels deep; parents are strictly larger, so no cycles.
        if key not in depth:
            depth[key] = depth_of(parent.get(key, ROOT_KEY)) + 1
        return depth[key]

    common = {"split": metadata["split"], "image_id": metadata["image_id"], "shard": shard}
    rows = [
        {
            **common,
            "key": ROOT_KEY,
            "kind": IMAGE,
            "label": None,
            "labels": sorted(metadata["labels"]),
            "box_id": -1,
            "area_fraction": 1.0,
            "is_group_of": 0,
            "image_depth": 0,
            "tree_parent": None,
        }
    ]
    for box in boxes:
        area = (box["xmax"] - box["xmin"]) * (box["ymax"] - box["ymin"])
        rows.append(
            {
                **common,
                "key": box["key"],
                "kind": BOX,
                "label": box["label"],
                "labels": [box["label"]],
                "box_id": box["box_id"],
                "area_fraction": area,
                "is_group_of": box.get("is_group_of", 0),
                "image_depth": depth_of(box["key"]),
                "tree_parent": parent[box["key"]],
            }
        )
    return rows


def iter_crops(urls: Sequence[str]) -> Iterator[tuple[dict, bytes]]:
    """(CROPS row, JPEG bytes) of every unique crop of the shards, in shard then tar order."""
    for sample in read_samples(urls):
        metadata = json.loads(sample.jpegs["json"])
        for row in crop_rows(metadata, sample.jpegs["__url__"]):
            entry = f"{row['key']}.jpg"
            if entry not in sample.jpegs:
                raise InputError(f"{row['shard']}: sample {row['image_id']} lacks {entry}")
            yield row, sample.jpegs[entry]


def shard_fingerprint(url: str) -> str:
    """Content identity of a shard: the sha256 in its completion marker, else the store's
    size/checksum/mtime and head hash (hierdata.runinfo.fingerprint)."""
    marker = read_shard_marker(url) if url.endswith(SHARD_SUFFIX) else None
    recorded = (marker or {}).get("sha256")
    if recorded:
        return f"sha256:{recorded}"
    try:
        return json.dumps(fingerprint(url), sort_keys=True)
    except FileNotFoundError as err:
        raise InputError(f"shard not found: {url}") from err


def cache_key(model: EmbeddingModel, urls: Sequence[str]) -> str:
    """sha256 naming one cache entry: cache version, model, preprocessing and shard contents."""
    ident = {
        "version": CACHE_VERSION,
        "model": model.fingerprint,
        "image_size": model.image_size,
        "preprocess": "letterbox-mean-fill",
        "shards": [[url, shard_fingerprint(url)] for url in urls],
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Embedded:
    """The embedded split: crops (CROPS table, N rows), embeddings (N, D) float32, their cache
    key and meta (meta.json contents), and whether they came from the cache."""

    crops: pa.Table
    embeddings: np.ndarray
    key: str
    meta: dict
    cache_hit: bool


def embed_split(
    model: EmbeddingModel,
    urls: Sequence[str],
    batch_size: int = 256,
    workers: int = 4,
    progress: bool = True,
) -> tuple[pa.Table, np.ndarray]:
    """Embed every unique crop of the shards once: (CROPS table, (N, D) float32)."""
    rows, parts, pending = [], [], []
    bar = tqdm(
        desc="embed",
        unit="crop",
        disable=not progress,
        file=sys.stdout,  # stderr is kept for warnings and the one error line
        mininterval=0.1 if sys.stdout.isatty() else 30.0,
    )
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for row, jpeg in iter_crops(urls):
            rows.append(row)
            pending.append(jpeg)
            if len(pending) == batch_size:
                parts.append(model.embed_jpegs(pending, pool))
                bar.update(len(pending))
                pending = []
        if pending:
            parts.append(model.embed_jpegs(pending, pool))
            bar.update(len(pending))
    bar.close()
    if not rows:
        raise InputError(f"no samples in shards {list(urls)[:3]}")
    return pa.Table.from_pylist(rows, schema=CROPS), np.concatenate(parts).astype(np.float32)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _read_cache_entry(entry: EmbeddingCacheEntry) -> tuple[pa.Table, np.ndarray, dict] | None:
    """A cache entry's (crops, embeddings, meta), or None when a file of it is missing, cut
    or damaged (the split is then embedded again and the entry rewritten: the cache is ours,
    a broken entry is no reason to stop)."""
    try:
        crops = pq.read_table(io.BytesIO(read_bytes(entry.crops)))
        # allow_pickle=False: a cache file is data, never code.
        embeddings = np.load(io.BytesIO(read_bytes(entry.embeddings)), allow_pickle=False)
        meta = json.loads(read_bytes(entry.meta))
    except (InputError, OSError, ValueError, EOFError, pa.ArrowException) as err:
        LOG.warning("embedding cache entry %s is unreadable (%s): embedding again", entry.meta, err)
        return None
    if crops.num_rows != len(embeddings) or not crops.schema.equals(CROPS):
        LOG.warning(
            "embedding cache entry %s does not match its crops: embedding again", entry.meta
        )
        return None
    if not isinstance(meta, dict):
        return None
    return crops, embeddings, meta


def load_or_embed(
    model: EmbeddingModel,
    urls: Sequence[str],
    cache_dir: str,
    batch_size: int = 256,
    workers: int = 4,
    progress: bool = True,
) -> Embedded:
    """The split's embeddings from the cache, or embedded now and written to it.

    An entry counts only once its meta.json exists (written after the data files, each
    atomically), so an interrupted run is simply embedded again.
    """
    key = cache_key(model, urls)
    entry = EmbeddingCacheEntry.of(cache_dir, key)
    if exists(entry.meta):
        cached = _read_cache_entry(entry)
        if cached is not None:
            crops, embeddings, meta = cached
            return Embedded(crops, embeddings, key, meta, cache_hit=True)
    started = time.perf_counter()
    crops, embeddings = embed_split(model, urls, batch_size, workers, progress)
    meta = {
        "key": key,
        "cache_version": CACHE_VERSION,
        "model": model.description,
        "fingerprint": model.fingerprint,
        "geometry": model.geometry,
        "curv": model.curv,
        "zero_shot": model.zero_shot,
        "shards": list(urls),
        "crops": crops.num_rows,
        "dim": int(embeddings.shape[1]),
        "seconds": time.perf_counter() - started,
    }
    write_bytes(entry.crops, _parquet_bytes(crops))
    write_bytes(entry.embeddings, _npy_bytes(embeddings))
    write_json(entry.meta, meta)
    return Embedded(crops, embeddings, key, meta, cache_hit=False)


def embed_files(
    model: EmbeddingModel,
    paths: Sequence[str | os.PathLike],
    batch_size: int = 256,
    workers: int = 4,
) -> np.ndarray:
    """(N, D) float32 embeddings of image files (kNN folders), letterboxed like the crops."""
    parts = []
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, len(paths), batch_size):
            images = [Path(p).read_bytes() for p in paths[start : start + batch_size]]
            parts.append(model.embed_jpegs(images, pool))
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
