"""Image encoders for entailment training: CLIP ViT and ResNet backbones with a 128-d geometry head.

Weights come only from local files: save_pretrained folders, or for the ResNets a checkpoint
file read and converted by training.backbone_weights (never arbitrary pickles).
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    PretrainedConfig,
    PreTrainedModel,
    ResNetConfig,
    ResNetModel,
)

from training.backbone_weights import convert_torchvision_resnet, load_weights_file
from training.geometry import exp_map0
from training.losses import GEOMETRIES

ENCODERS = ("clip-vit-b16", "resnet50", "tiny-vit", "tiny-resnet")

# Normalisation constants the backbones were pre-trained with (OpenAI CLIP; ImageNet for MoCo).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)

# Curvature c is learnt in [0.1, 10] (MERU's init / 10 to init * 10, init 1). As c -> 0 the
# hyperboloid flattens (x_t = sqrt(1/c + |x|^2) blows up and angles lose their hyperbolic meaning);
# as c grows the same tangent norm lands at radius sqrt(c)|v|, where sinh grows exponentially and
# exterior angles saturate at their clamps, so gradients vanish.
LOG_CURV_BOUNDS = (math.log(0.1), math.log(10.0))
# Embedding scale alpha multiplies the projection before exp_map0. Capped at 1 (as in MERU) so it
# can only shrink tangent vectors, never push them out to where sinh explodes; floored at 1e-3 as
# at the origin exterior angles are undefined (geometry returns pi/2) and the loss goes flat.
LOG_ALPHA_BOUNDS = (math.log(1e-3), 0.0)

_FORMAT = "hier-encoder"


@dataclass(frozen=True)
class _Spec:
    """How to build one named encoder: backbone class, default config, preprocessing.

    ``image_size`` is the ResNets' input size; a ViT's comes from its config (position embeddings).
    """

    model_class: type[PreTrainedModel]
    config: PretrainedConfig
    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]

    def new_config(self) -> PretrainedConfig:
        """A fresh copy of the default config (a model keeps and may mutate its config)."""
        return copy.deepcopy(self.config)


def _clip_vit(width: int, layers: int, heads: int, image_size: int) -> CLIPVisionConfig:
    """CLIP image tower (quick_gelu, pre-LN) with 16-pixel patches and a 4x wide MLP."""
    return CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=16,
    )


def _resnet(stem: int, hidden_sizes: list[int], depths: list[int]) -> ResNetConfig:
    """Bottleneck ResNet v1.5 (stride in the 3x3 conv, as torchvision and MoCo-v2)."""
    return ResNetConfig(
        embedding_size=stem, hidden_sizes=hidden_sizes, depths=depths, layer_type="bottleneck"
    )


_SPECS = {
    # An untrained ViT-B/16 unless a folder (e.g. openai/clip-vit-base-patch16) is given.
    "clip-vit-b16": _Spec(CLIPVisionModel, _clip_vit(768, 12, 12, 224), 224, CLIP_MEAN, CLIP_STD),
    "resnet50": _Spec(
        ResNetModel, _resnet(64, [256, 512, 1024, 2048], [3, 4, 6, 3]), 224, *_IMAGENET
    ),
    # Tiny siblings for CPU tests and the demo: same code paths, ~0.5M / ~0.13M parameters.
    "tiny-vit": _Spec(CLIPVisionModel, _clip_vit(128, 2, 4, 64), 64, CLIP_MEAN, CLIP_STD),
    "tiny-resnet": _Spec(
        ResNetModel, _resnet(16, [32, 64, 128, 256], [1, 1, 1, 1]), 64, *_IMAGENET
    ),
}


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    return _SPECS[name]


class HierEncoder(nn.Module):
    """Backbone + linear projection to ``embed_dim`` + geometry head.

    lorentz: ``exp_map0(alpha * proj(features), curv)``, the space components of points on the
    hyperboloid of curvature ``-curv``; ``curv`` (init 1) and ``alpha`` (init
    ``start_radius / sqrt(embed_dim)``; MERU's with start_radius 1) are learnt through their logs
    and clamped (see LOG_CURV_BOUNDS, LOG_ALPHA_BOUNDS).
    euclidean: ``proj(features)``; no curvature or scale (exterior angles are scale invariant).

    Args:
        backbone: a CLIPVisionModel or ResNetModel whose ``pooler_output`` is the image feature.
        name: the encoder name in ENCODERS (it fixes the preprocessing and is saved with weights).
        embed_dim: output dimension D.
        geometry: "lorentz" or "euclidean".
        start_radius: lorentz only: the tangent norm, i.e. geodesic radius, at which the
            projection of unit-variance features starts (``|proj(f)| ~ sqrt(D)`` at init, times
            alpha); the measured radius is logged by training (EntailmentLoss "mean_radius").
    """

    def __init__(
        self,
        backbone: PreTrainedModel,
        name: str,
        embed_dim: int = 128,
        geometry: str = "lorentz",
        start_radius: float = 1.0,
    ) -> None:
        super().__init__()
        spec = _spec(name)
        if geometry not in GEOMETRIES:
            raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
        start_alpha = start_radius / math.sqrt(embed_dim)
        if not LOG_ALPHA_BOUNDS[0] <= math.log(max(start_alpha, 1e-300)) <= LOG_ALPHA_BOUNDS[1]:
            raise ValueError(
                f"start_radius must lie in [{math.exp(LOG_ALPHA_BOUNDS[0]) * embed_dim**0.5:.3g}, "
                f"{math.exp(LOG_ALPHA_BOUNDS[1]) * embed_dim**0.5:.3g}] for embed_dim "
                f"{embed_dim}, got {start_radius}"
            )
        if not isinstance(backbone, spec.model_class):
            raise ValueError(f"{name} needs a {spec.model_class.__name__} backbone")
        config = backbone.config
        is_vit = isinstance(config, CLIPVisionConfig)
        feature_dim = config.hidden_size if is_vit else config.hidden_sizes[-1]
        self.backbone = backbone
        self.name = name
        self.geometry = geometry
        self.embed_dim = embed_dim
        # A ViT's position embeddings fix its input size; a ResNet takes any size.
        self.image_size: int = config.image_size if is_vit else spec.image_size
        self.image_mean = spec.image_mean
        self.image_std = spec.image_std
        self.projection = nn.Linear(feature_dim, embed_dim, bias=False)
        # MERU's init: unit-variance features project to norm ~sqrt(D), i.e. radius ~1 after alpha.
        nn.init.normal_(self.projection.weight, std=feature_dim**-0.5)
        if geometry == "lorentz":
            self.log_curv = nn.Parameter(torch.tensor(0.0))
            self.log_alpha = nn.Parameter(torch.tensor(math.log(start_alpha)))

    @property
    def curv(self) -> Tensor | None:
        """0-dim float32 curvature c in [0.1, 10]; None for the euclidean geometry."""
        if self.geometry != "lorentz":
            return None
        return self.log_curv.float().clamp(*LOG_CURV_BOUNDS).exp()

    @property
    def alpha(self) -> Tensor | None:
        """0-dim float32 embedding scale in [1e-3, 1]; None for the euclidean geometry."""
        if self.geometry != "lorentz":
            return None
        return self.log_alpha.float().clamp(*LOG_ALPHA_BOUNDS).exp()

    def forward(self, pixels: Tensor) -> Tensor:
        """Embed a batch of images.

        Args:
            pixels: (B, 3, H, W) float, normalised with image_mean / image_std; H = W = image_size
                for ViTs.

        Returns:
            (B, embed_dim) float32: hyperboloid space components (lorentz) or vectors (euclidean).
        """
        features = self.backbone(pixel_values=pixels).pooler_output.flatten(1)
        projected = self.projection(features).float()
        if self.geometry == "euclidean":
            return projected
        # Pull the logs back inside their bounds (MERU does the same): the clamp in curv/alpha
        # passes no gradient beyond a bound, so a log that overshot would otherwise stay stuck.
        # .data keeps the write out of autograd's version tracking.
        self.log_curv.data.clamp_(*LOG_CURV_BOUNDS)
        self.log_alpha.data.clamp_(*LOG_ALPHA_BOUNDS)
        return exp_map0(self.alpha * projected, self.curv)


def build_encoder(
    name: str,
    weights: str | os.PathLike | None = None,
    embed_dim: int = 128,
    geometry: str = "lorentz",
    start_radius: float = 1.0,
) -> HierEncoder:
    """Build a named encoder, with backbone weights from a local file or folder.

    Args:
        name: one of ENCODERS.
        weights: None for a random init (e.g. an untrained ViT-B/16); a save_pretrained folder
            (config.json + model.safetensors; a full CLIPModel folder works for the ViTs, whose
            config then comes from the folder); or, for the ResNets, a torchvision-layout
            checkpoint file (MoCo-v2 .pth.tar, .pt, .pth or .safetensors).
        embed_dim: output dimension D.
        geometry: "lorentz" or "euclidean".
        start_radius: see HierEncoder.

    Returns:
        HierEncoder in training mode, float32.

    Raises:
        ValueError: unknown name or geometry; a checkpoint that does not fit the backbone.
        FileNotFoundError: ``weights`` does not exist.
    """
    spec = _spec(name)
    if weights is None:
        backbone = spec.model_class(spec.new_config())
    else:
        path = Path(weights)
        if not path.exists():
            raise FileNotFoundError(f"{name} weights not found: {weights} (local paths only)")
        if path.is_dir():
            backbone = _from_pretrained_folder(spec.model_class, path)
        elif spec.model_class is ResNetModel:
            backbone = ResNetModel(spec.new_config())
            backbone.load_state_dict(convert_torchvision_resnet(load_weights_file(path)))
        else:
            raise ValueError(f"{name} loads from a save_pretrained folder, got the file {path}")
    return HierEncoder(backbone, name, embed_dim, geometry, start_radius)


def _from_pretrained_folder(model_class: type[PreTrainedModel], folder: Path) -> PreTrainedModel:
    """``from_pretrained`` on a local folder: safetensors only, float32, no missing weights.

    Mis-shaped weights already raise inside from_pretrained (ignore_mismatched_sizes=False).
    """
    try:
        model, info = model_class.from_pretrained(
            folder,
            local_files_only=True,
            use_safetensors=True,
            dtype=torch.float32,
            output_loading_info=True,
        )
    except SafetensorError as err:  # a cut or damaged weights file: the user's to replace
        raise ValueError(f"{folder}: its safetensors weights are not readable ({err})") from err
    # from_pretrained fills absent weights with a random init and only logs it; a wrong folder
    # would then train from noise. Extra weights (a full CLIP's text tower) are fine.
    missing = sorted(info["missing_keys"])
    if missing:
        raise ValueError(
            f"{folder} does not hold a {model_class.__name__}: {len(missing)} weights missing, "
            f"e.g. {missing[:3]}"
        )
    return model


def encoder_state(model: nn.Module) -> dict[str, Tensor]:
    """Detached, contiguous CPU copy of an encoder's state dict (unwraps DDP's ``.module``)."""
    model = getattr(model, "module", model)
    return {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}


def save_encoder(model: nn.Module, path: str | os.PathLike) -> None:
    """Write a HierEncoder (backbone, projection, curvature, scale) to one safetensors file.

    The metadata records the encoder name, geometry, embed_dim and backbone config, so
    load_encoder rebuilds the architecture without the original weights folder. The file is
    written under a temporary name and renamed, so a crash never leaves a partial file.
    """
    model = getattr(model, "module", model)
    metadata = {
        "format": _FORMAT,
        "encoder": model.name,
        "geometry": model.geometry,
        "embed_dim": str(model.embed_dim),
        "backbone_config": model.backbone.config.to_json_string(),
    }
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    save_file(encoder_state(model), partial, metadata=metadata)
    os.replace(partial, path)


def load_encoder(
    path: str | os.PathLike,
    name: str | None = None,
    geometry: str | None = None,
    embed_dim: int | None = None,
) -> HierEncoder:
    """Rebuild a HierEncoder written by save_encoder (strict: every tensor must match).

    Args:
        path: the safetensors file.
        name, geometry, embed_dim: optional expectations; a mismatch with the file raises.

    Returns:
        HierEncoder in training mode.

    Raises:
        FileNotFoundError: no such file. ValueError: not a save_encoder file, or a mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder file not found: {path}")
    try:
        opened = safe_open(path, framework="pt")
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err})") from err
    with opened as handle:
        metadata = handle.metadata() or {}
    if metadata.get("format") != _FORMAT:
        raise ValueError(f"{path} was not written by save_encoder (no {_FORMAT} metadata)")
    saved = {
        "name": metadata["encoder"],
        "geometry": metadata["geometry"],
        "embed_dim": int(metadata["embed_dim"]),
    }
    expected = {"name": name, "geometry": geometry, "embed_dim": embed_dim}
    for field, value in expected.items():
        if value is not None and value != saved[field]:
            raise ValueError(f"{path} holds {field}={saved[field]!r}, expected {value!r}")
    spec = _spec(saved["name"])
    config = type(spec.config).from_dict(json.loads(metadata["backbone_config"]))
    backbone = spec.model_class(config)
    model = HierEncoder(backbone, saved["name"], saved["embed_dim"], saved["geometry"])
    model.load_state_dict(load_file(path, device="cpu"))
    return model
