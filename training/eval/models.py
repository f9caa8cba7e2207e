"""What evaluation embeds with: a module from normalised pixels to vectors, its geometry and
a fingerprint of its weights; either a tuned encoder (training.train's output) or the untuned
backbone as it was pre-trained (zero-shot: CLIP's projected image embedding, a ResNet's pooled
features).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from torch import Tensor, nn
from transformers import CLIPVisionModel, CLIPVisionModelWithProjection

from hierdata.errors import InputError
from training.encoders import build_encoder, load_encoder
from training.images import Augment, letterbox, mean_colour


class _PooledFeatures(nn.Module):
    """A backbone's pooled image feature, (B, F): the untuned encoder without a random head."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, pixels: Tensor) -> Tensor:
        return self.backbone(pixel_values=pixels).pooler_output.flatten(1)


class _ClipImageEmbedding(nn.Module):
    """CLIP's image embedding, (B, P): ``visual_projection(pooled output)``, what CLIP's
    ``get_image_features`` returns and what its pre-training compared by cosine."""

    def __init__(self, model: CLIPVisionModelWithProjection) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: Tensor) -> Tensor:
        return self.model(pixel_values=pixels).image_embeds


def _folder_tensor(folder: Path, key: str) -> Tensor | None:
    """One tensor of a save_pretrained folder's safetensors (sharded or not), or None."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        file = json.loads(index.read_text())["weight_map"].get(key)
        if file is None:
            return None
        path = folder / file
    else:
        path = folder / "model.safetensors"
    with safe_open(path, framework="pt") as handle:
        names = handle.keys()
        return handle.get_tensor(key) if key in names else None


def _clip_embedding(backbone: CLIPVisionModel, weights: str | None) -> tuple[nn.Module, str]:
    """CLIP's projected image embedding around ``backbone``, and what it is.

    The projection comes from the weights folder (a full CLIPModel folder holds
    ``visual_projection.weight``); with no weights it is CLIP's random init, like the backbone.
    A vision-only folder has no projection: the pooled output is used instead, and said so.
    """
    model = CLIPVisionModelWithProjection(backbone.config)
    model.vision_model.load_state_dict(backbone.state_dict())
    if weights is None:
        return _ClipImageEmbedding(model), "CLIP image embedding (visual_projection), random init"
    projection = _folder_tensor(Path(weights), "visual_projection.weight")
    if projection is None:
        return _PooledFeatures(backbone), "pooled output (the folder has no visual_projection)"
    model.visual_projection = nn.Linear(projection.shape[1], projection.shape[0], bias=False)
    model.visual_projection.weight.data.copy_(projection)
    return _ClipImageEmbedding(model), "CLIP image embedding (visual_projection of pooled output)"


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
            "features": f"tuned head ({encoder.geometry})",
        },
        device=device,
    )


def zero_shot(name: str, weights: str | None, seed: int, device: torch.device) -> EmbeddingModel:
    """The untuned backbone as pre-trained, scored by cosine (DESIGN "zero-shot").

    CLIP ViTs embed with CLIP's projected image embedding (``get_image_features``), ResNets with
    their pooled features (MoCo-v2 is pre-trained on those), as the paper's baselines are
    "consistent with their pre-training"; ``description["features"]`` says which. With
    ``weights`` None the backbone is randomly initialised from ``seed`` exactly as
    training.train initialises it, so this is the tuned models' starting point: a floor, not a
    pre-trained baseline.
    """
    torch.manual_seed(seed)
    try:
        encoder = build_encoder(name, weights)
        if isinstance(encoder.backbone, CLIPVisionModel):
            module, features = _clip_embedding(encoder.backbone, weights)
        else:
            module, features = _PooledFeatures(encoder.backbone), "pooled output (ResNet)"
    except (FileNotFoundError, ValueError) as err:
        raise InputError(str(err)) from err
    source = f"sha256:{sha256_path(weights)}" if weights else f"random-init:seed={seed}"
    return EmbeddingModel(
        module,
        encoder.image_size,
        encoder.image_mean,
        encoder.image_std,
        "euclidean",
        None,
        zero_shot=True,
        fingerprint=f"zero-shot:{name}:{source}:{features}:torch={torch.__version__}",
        description={
            "encoder": name,
            "weights": weights or "random init",
            "seed": seed,
            "features": features,
        },
        device=device,
    )
