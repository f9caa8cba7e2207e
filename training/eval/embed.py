"""Embedding for evaluation: every unique crop of an eval split (whole images and their boxes)
embedded once, with labels and provenance, and cached on disk under a model + shards key.

Cache layout (any fsspec URL): ``{cache_dir}/{key}/crops.parquet`` (CROPS schema, one row per
crop), ``embeddings.npy`` ((N, D) float32, row i = crop i) and ``meta.json`` (the model and shard
fingerprints, geometry, curvature), written last as the completion marker. The key is the sha256
of the model fingerprint (a checkpoint's sha256, or a zero-shot encoder's name, weights hash and
seed), the preprocessing and each shard's content hash, so a retrained model or rebuilt shards
never read stale embeddings.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor, nn
from tqdm import tqdm

from hierdata.errors import InputError
from hierdata.io import exists, read_bytes, write_bytes, write_json
from hierdata.runinfo import fingerprint
from schemas.sample import ROOT_KEY
from training.data import Augment, letterbox, mean_colour, read_samples
from training.encoders import build_encoder, load_encoder

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
    once under their source image instead (training.data "Crop identity").
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


class _PooledFeatures(nn.Module):
    """A backbone's pooled image feature, (B, F): the untuned encoder without a random head."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, pixels: Tensor) -> Tensor:
        return self.backbone(pixel_values=pixels).pooler_output.flatten(1)


def resolve_device(name: str) -> torch.device:
    """ "auto" (cuda when visible), "cuda" or "cpu"."""
    if name not in ("auto", "cuda", "cpu"):
        raise InputError(f"--device must be auto, cuda or cpu, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda but no CUDA device is visible")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def sha256_path(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for item in files:
        digest.update(str(item.relative_to(path) if path.is_dir() else "").encode())
        with open(item, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class EmbeddingModel:
    """What evaluation embeds with: a module from normalised pixels to vectors, and its geometry.

    geometry "lorentz" (curv set: vectors are hyperboloid space components) or "euclidean";
    zero_shot models are scored by cosine only. fingerprint identifies the weights for the cache.
    """

    module: nn.Module
    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    geometry: str
    curv: float | None
    zero_shot: bool
    fingerprint: str
    description: dict = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        self.module = self.module.to(self.device).eval()
        self.normalize = Augment(self.image_size, self.image_mean, self.image_std, augment=False)
        self.normalize = self.normalize.to(self.device).eval()

    @property
    def fill(self) -> tuple[int, int, int]:
        return mean_colour(self.image_mean)

    def embed_pixels(self, pixels: Tensor) -> Tensor:
        """(B, 3, S, S) uint8 letterboxed crops -> (B, D) float32 CPU embeddings."""
        with torch.no_grad():
            return self.module(self.normalize(pixels.to(self.device))).float().cpu()

    def embed_jpegs(self, jpegs: Sequence[bytes], pool: ThreadPoolExecutor) -> np.ndarray:
        """(B, D) float32 embeddings of encoded images (any PIL format), decoded on ``pool``."""
        decode = lambda jpeg: letterbox(jpeg, self.image_size, self.fill)  # noqa: E731
        pixels = np.stack(list(pool.map(decode, jpegs)))
        return self.embed_pixels(torch.from_numpy(pixels).permute(0, 3, 1, 2)).numpy()


def from_checkpoint(path: str | os.PathLike, device: torch.device) -> EmbeddingModel:
    """The tuned encoder written by training.train (OUT/encoder.safetensors)."""
    try:
        encoder = load_encoder(path)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(str(err)) from err
    curv = None if encoder.curv is None else float(encoder.curv.detach())
    return EmbeddingModel(
        encoder,
        encoder.image_size,
        encoder.image_mean,
        encoder.image_std,
        encoder.geometry,
        curv,
        zero_shot=False,
        fingerprint=f"checkpoint:{sha256_path(path)}",
        description={
            "checkpoint": str(path),
            "encoder": encoder.name,
            "geometry": encoder.geometry,
            "embed_dim": encoder.embed_dim,
            "curv": curv,
        },
        device=device,
    )


def zero_shot(name: str, weights: str | None, seed: int, device: torch.device) -> EmbeddingModel:
    """The untuned backbone's pooled features, scored by cosine (DESIGN "zero-shot").

    With ``weights`` None the backbone is randomly initialised from ``seed`` exactly as
    training.train initialises it, so this is the tuned models' starting point: a floor, not a
    pre-trained baseline. Pooled features are used rather than a random projection head.
    """
    torch.manual_seed(seed)
    try:
        encoder = build_encoder(name, weights)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(str(err)) from err
    source = f"sha256:{sha256_path(weights)}" if weights else f"random-init:seed={seed}"
    return EmbeddingModel(
        _PooledFeatures(encoder.backbone),
        encoder.image_size,
        encoder.image_mean,
        encoder.image_std,
        "euclidean",
        None,
        zero_shot=True,
        fingerprint=f"zero-shot:{name}:{source}:torch={torch.__version__}",
        description={
            "encoder": name,
            "weights": weights or "random init",
            "seed": seed,
            "features": "backbone pooled output",
        },
        device=device,
    )


def shard_fingerprint(url: str) -> str:
    """Content identity of a shard: the sha256 in its completion marker ({name}.json), else
    the store's size/checksum/mtime and head hash (hierdata.runinfo.fingerprint)."""
    marker = url[: -len(".tar")] + ".json" if url.endswith(".tar") else None
    if marker and exists(marker):
        recorded = json.loads(read_bytes(marker)).get("sha256")
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
        mininterval=0.1 if sys.stderr.isatty() else 30.0,
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
    folder = posixpath.join(cache_dir.rstrip("/"), key)
    paths = {
        name: posixpath.join(folder, name)
        for name in ("crops.parquet", "embeddings.npy", "meta.json")
    }
    if exists(paths["meta.json"]):
        crops = pq.read_table(io.BytesIO(read_bytes(paths["crops.parquet"])))
        # allow_pickle=False: a cache file is data, never code.
        embeddings = np.load(io.BytesIO(read_bytes(paths["embeddings.npy"])), allow_pickle=False)
        if crops.num_rows == len(embeddings) and crops.schema.equals(CROPS):
            meta = json.loads(read_bytes(paths["meta.json"]))
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
    write_bytes(paths["crops.parquet"], _parquet_bytes(crops))
    write_bytes(paths["embeddings.npy"], _npy_bytes(embeddings))
    write_json(paths["meta.json"], meta)
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
