"""Training checkpoints: write one atomically, find the complete ones, and resume from one.

A checkpoint folder (schemas.training_layout: checkpoints/step-NNNNNNNN) holds the encoder and
loss parameters as safetensors and a state file with the optimizer, step, per-rank data state
and RNG states: tensors and plain containers only, read back with
``torch.load(weights_only=True)`` so a pickle carrying code is refused, never run.
"""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from hierdata.errors import InputError
from schemas.training_layout import CHECKPOINT_GLOB, CheckpointFiles, TrainOutput, partial
from training.data import DataState
from training.train_config import TrainConfig

# Fields that fix the batch stream: a checkpoint resumes exactly only if they are unchanged.
RESUME_KEYS = (
    "shards",
    "seed",
    "batch_pairs",
    "shuffle_buffer",
    "num_workers",
    "encoder",
    "geometry",
    "embed_dim",
)


def checkpoint_dirs(output: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a partial one never has its final name)."""
    root = Path(TrainOutput(str(output)).checkpoints_dir)
    return sorted(root.glob(CHECKPOINT_GLOB)) if root.is_dir() else []


def save_checkpoint(
    output: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_states: Tensor,
    rng_states: dict[str, Tensor],
    config: TrainConfig,
    world: int,
    samples_seen: float,
) -> Path:
    """Write checkpoints/step-NNNNNNNN atomically (a folder renamed into place); rank 0 only.

    Keeps the newest ``config.keep_checkpoints`` checkpoints and removes older ones.

    Args:
        data_states: (world, 1 + 2W) int64, DataState.to_tensor of every rank.
        rng_states: "cpu" (world, 5056) uint8, and "cuda" when training on GPUs.
    Returns:
        The checkpoint folder.
    """
    final = Path(TrainOutput(str(output)).checkpoint(step))
    temporary = Path(partial(str(final)))
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    files = CheckpointFiles(str(temporary))
    weights = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    save_file(weights, files.model, metadata={"step": str(step)})
    state = {
        "step": step,
        "samples_seen": samples_seen,
        "world_size": world,
        "optimizer": optimizer.state_dict(),
        "data_states": data_states,
        "rng_states": rng_states,
        "config": asdict(config),
    }
    torch.save(state, files.state)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
    for old in checkpoint_dirs(output)[: -max(1, config.keep_checkpoints)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    rank: int,
    world: int,
    device: torch.device,
) -> tuple[int, DataState, float]:
    """Restore weights, optimizer and this rank's RNG states.

    Returns:
        (step, this rank's DataState, samples consumed by all ranks so far).

    Raises:
        InputError: the state file is not a weights-only file (a pickle with code is refused,
            never run), or the checkpoint was made with another world size or data settings.
    """
    files = CheckpointFiles(str(directory))
    try:
        state = torch.load(files.state, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0]
        raise InputError(f"refusing {files.state}: not a weights-only file ({reason})") from err
    except (RuntimeError, EOFError, OSError) as err:  # cut, damaged or missing
        reason = (str(err).strip() or "empty file").splitlines()[0].split(". ")[0]
        raise InputError(f"{files.state} is not a readable checkpoint file ({reason})") from err
    saved = state["config"]
    changed = [key for key in RESUME_KEYS if saved.get(key) != getattr(config, key)]
    if state["world_size"] != world or changed:
        raise InputError(
            f"{directory} was made with world size {state['world_size']} and "
            f"{ {key: saved.get(key) for key in changed} }; resuming exactly needs "
            f"world size {world} and the same {', '.join(RESUME_KEYS)}"
        )
    try:
        weights = load_file(files.model, device=str(device))
    except (SafetensorError, OSError) as err:
        raise InputError(f"{files.model} is not a readable safetensors file ({err})") from err
    model.load_state_dict(weights)
    # The peak learning rates are this run's options (a resume after a non-finite stop lowers
    # --lr), not the saved ones.
    base_lrs = [group["base_lr"] for group in optimizer.param_groups]
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as err:
        raise InputError(
            f"{directory}: its optimizer state does not fit this model ({err}); it predates the "
            f"backbone / geometry-head learning-rate groups: start a new --output"
        ) from err
    for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
        group["base_lr"] = base_lr
    torch.set_rng_state(state["rng_states"]["cpu"][rank])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["rng_states"]["cuda"][rank], device)
    data_state = DataState.from_tensor(state["data_states"][rank])
    return int(state["step"]), data_state, float(state["samples_seen"])
