"""Where the code runs: the device choice, torchrun's process group and gathers across ranks.

Shared by training (one process per rank under torchrun) and evaluation (one process).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor

from hierdata.errors import InputError


def resolve_device(name: str) -> torch.device:
    """ "auto" (cuda when visible), "cuda" or "cpu"; InputError for anything else."""
    if name not in ("auto", "cuda", "cpu"):
        raise InputError(f"--device must be auto, cuda or cpu, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda but no CUDA device is visible")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def setup_distributed(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) from torchrun's environment; one process without it.

    Each rank takes the GPU of its local rank; the process group uses nccl on CUDA, gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    cuda = device.type == "cuda"
    if cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, device


def end_distributed() -> None:
    """Leave the process group, if one was started."""
    if dist.is_initialized():
        dist.destroy_process_group()


def gather(tensor: Tensor, world: int, device: torch.device) -> Tensor:
    """(world, ...) stack of every rank's ``tensor`` (same shape on all ranks), on the CPU."""
    if world == 1:
        return tensor[None].cpu()
    local = tensor.to(device)  # nccl gathers CUDA tensors only
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local)
    return torch.stack(parts).cpu()


def gather_rng_states(world: int, device: torch.device) -> dict[str, Tensor]:
    """Every rank's RNG states: "cpu" (world, 5056) uint8, and "cuda" when on GPUs."""
    states = {"cpu": gather(torch.get_rng_state(), world, device)}
    if device.type == "cuda":
        states["cuda"] = gather(torch.cuda.get_rng_state(device), world, device)
    return states


def sum_over_ranks(values: Tensor, world: int) -> Tensor:
    """All-reduce (sum) in place across ranks; a no-op in one process."""
    if world > 1:
        dist.all_reduce(values)
    return values


def barrier(world: int) -> None:
    """Wait for every rank (a no-op in one process)."""
    if world > 1:
        dist.barrier()
