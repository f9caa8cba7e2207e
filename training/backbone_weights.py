"""Backbone checkpoints from local files: weights-only loading and the torchvision ResNet key map.

No pickled code ever runs; torchvision-layout (MoCo-v2) ResNet keys become transformers' keys.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".pth.tar")


def load_weights_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a tensor state dict without ever running pickled code.

    ``.safetensors`` via safetensors; ``.pt``/``.pth``/``.pth.tar`` via
    ``torch.load(map_location="cpu", weights_only=True)``, which refuses any pickled object other
    than tensors and plain containers. A ``{"state_dict": ...}`` wrapper (MoCo, Lightning) is
    unwrapped.

    Returns:
        dict of parameter name -> CPU tensor.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown suffix, a pickle that is not plain tensors, non-tensor entries.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if not path.name.endswith(WEIGHT_SUFFIXES):
        raise ValueError(f"{path}: weights must be one of {', '.join(WEIGHT_SUFFIXES)}")
    if path.name.endswith(".safetensors"):
        try:
            return load_file(path, device="cpu")
        except SafetensorError as error:
            raise ValueError(f"{path} is not a readable safetensors file ({error})") from error
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0]
        raise ValueError(f"refusing {path}: not a plain tensor checkpoint ({reason})") from error
    except (RuntimeError, EOFError) as error:  # a cut or damaged zip archive
        reason = (str(error).strip() or "empty file").splitlines()[0].split(". ")[0]
        raise ValueError(f"{path} is not a readable checkpoint file ({reason})") from error
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a state dict")
    not_tensors = [key for key, value in checkpoint.items() if not isinstance(value, Tensor)]
    if not_tensors:
        raise ValueError(f"{path}: entries that are not tensors: {not_tensors[:5]}")
    return dict(checkpoint)


# One torchvision ResNet key: the stem (conv1, bn1) or, in block {block} of stage {stage} (1-4),
# conv{index}/bn{index} (1-3) or the shortcut's downsample.0 (conv) / downsample.1 (BN).
_TORCHVISION_KEY = re.compile(
    r"(?:(?P<stem>conv1|bn1)"
    r"|layer(?P<stage>[1-4])\.(?P<block>\d+)\."
    r"(?:(?P<op>conv|bn)(?P<index>[1-3])|downsample\.(?P<shortcut>[01])))"
    r"\.(?P<param>weight|bias|running_mean|running_var|num_batches_tracked)"
)
# Wrappers around the backbone: DDP ("module."), MoCo's query encoder, detection/SSL "backbone.".
_WRAPPER_PREFIXES = ("module.", "encoder_q.", "backbone.")
# Heads on top of the pooled feature: classifier / MoCo-v2 MLP ("fc."), SSL projector/predictor.
_HEAD_PREFIXES = ("fc.", "head.", "projector.", "predictor.")


def _hf_resnet_key(key: str) -> str | None:
    """transformers key for one prefix-stripped torchvision key; None when it has none."""
    match = _TORCHVISION_KEY.fullmatch(key)
    if match is None:
        return None
    part = match.groupdict()
    is_conv = part["stem"] == "conv1" or part["op"] == "conv" or part["shortcut"] == "0"
    # torchvision's convs have no bias and no BN statistics.
    if is_conv and part["param"] != "weight":
        return None
    if part["stem"]:
        module = "embedder.embedder"
    else:
        # torchvision numbers stages and convs from 1, transformers from 0; blocks agree.
        block = f"encoder.stages.{int(part['stage']) - 1}.layers.{part['block']}"
        inner = "shortcut" if part["shortcut"] else f"layer.{int(part['index']) - 1}"
        module = f"{block}.{inner}"
    return f"{module}.{'convolution' if is_conv else 'normalization'}.{part['param']}"


def convert_torchvision_resnet(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a torchvision-layout ResNet state dict to transformers' ResNetModel keys.

    Mapping (s = stage 1-4, b = block, i = conv 1-3; transformers counts stages/convs from 0):

    - ``conv1.weight`` -> ``embedder.embedder.convolution.weight``
    - ``bn1.*`` -> ``embedder.embedder.normalization.*``
    - ``layer{s}.{b}.conv{i}.weight`` -> ``{B}.layer.{i-1}.convolution.weight``
    - ``layer{s}.{b}.bn{i}.*`` -> ``{B}.layer.{i-1}.normalization.*``
    - ``layer{s}.{b}.downsample.0.weight`` -> ``{B}.shortcut.convolution.weight``
    - ``layer{s}.{b}.downsample.1.*`` -> ``{B}.shortcut.normalization.*``

    where ``{B} = encoder.stages.{s-1}.layers.{b}`` and ``*`` is one of weight, bias,
    running_mean, running_var, num_batches_tracked. Prefixes ``module.``, ``encoder_q.``,
    ``backbone.`` are stripped (in that order). A full MoCo checkpoint also holds the momentum
    encoder (``encoder_k.*``) and the queue; as in MoCo's own linear evaluation only the query
    encoder is kept. Head keys (``fc.``, ``head.``, ``projector.``, ``predictor.``) are dropped.
    Both layouts put the stride in the 3x3 conv (ResNet v1.5).

    Args:
        state_dict: torchvision-layout tensors, e.g. from load_weights_file.

    Returns:
        A new dict keyed for ``ResNetModel.load_state_dict`` (same tensor objects).

    Raises:
        ValueError: keys with no mapping (listed), or two keys mapping to the same target.
    """
    keys = [key.removeprefix("module.") for key in state_dict]
    from_query_encoder = any(key.startswith("encoder_q.") for key in keys)
    converted: dict[str, Tensor] = {}
    unmapped = []
    for original, key in zip(state_dict, keys, strict=True):
        if from_query_encoder and not key.startswith("encoder_q."):
            continue
        for prefix in _WRAPPER_PREFIXES:
            key = key.removeprefix(prefix)
        if key.startswith(_HEAD_PREFIXES):
            continue
        target = _hf_resnet_key(key)
        if target is None:
            unmapped.append(original)
        elif target in converted:
            raise ValueError(f"two checkpoint keys map to {target} (one is {original})")
        else:
            converted[target] = state_dict[original]
    if unmapped:
        raise ValueError(
            f"{len(unmapped)} checkpoint keys are not torchvision ResNet keys: {unmapped[:10]}"
        )
    return converted
