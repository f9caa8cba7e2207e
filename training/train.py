"""The training loop: fine-tune an encoder with the entailment loss on streamed shards, DDP-ready.

Flat, nanoGPT-style: config, setup, one loop (data, forward, backward, clip, guard, step, save).

Run: ``python -m training.train --shards 'DIR/train-{000000..000009}.tar' --encoder tiny-vit
--output OUT`` (also under ``torchrun``; gloo on CPU, nccl on CUDA). Every TrainConfig field is a
``--field value`` option; booleans also take the bare flag (``--resume``).

Outputs (OUT is a local folder, shared between ranks): ``config.json`` (the resolved config),
``metrics.jsonl`` (one JSON object per logged step), ``checkpoints/step-NNNNNNNN/`` holding
``model.safetensors`` (encoder and loss parameters) and ``state.pt`` (optimizer, step, per-rank
data state and RNG states: tensors and plain containers only, read back with
``torch.load(weights_only=True)``), and ``encoder.safetensors`` (training.encoders.save_encoder)
at the end. The learning-rate schedule is a pure function of the step, so the step is its state.

Resume: ``--resume`` continues from the newest checkpoint (or starts, if there is none); a run
without it refuses a folder that holds checkpoints. Weights, optimizer, data position and RNG
states are restored, so on CPU the resumed run is bit-identical to an uninterrupted one; on CUDA
the data and random draws are identical but some kernels (atomic adds in backward) are not
deterministic, so parameters agree only to rounding.

Exit codes: 0 done; 2 a user error (bad option, missing shards or weights, a refused or
incompatible checkpoint), one line on stderr; 3 a non-finite loss or gradient norm, summed over
ranks so all stop together (the update is not applied; resume with a lower --lr).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from hierdata.errors import InputError
from hierdata.io import write_json
from training.cli import option, parse_dataclass
from training.data import (
    Augment,
    DataState,
    PairStream,
    epoch_samples,
    expand_shards,
    make_loader,
    mean_colour,
)
from training.encoders import ENCODERS, build_encoder, save_encoder
from training.losses import GEOMETRIES, EntailmentLoss

EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 3
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


@dataclass
class TrainConfig:
    # data
    shards: str = option("", "shard spec: brace ranges, comma lists; local paths or gs:// URLs")
    batch_pairs: int = option(256, "entailment pairs per batch per rank")
    shuffle_buffer: int = option(500, "samples in each worker's shuffle buffer (~0.3 MB each)")
    num_workers: int = option(4, "DataLoader workers per rank (0: read in the main process)")
    augment: bool = option(True, "flips, rotation, colour jitter and blur (kornia, on device)")
    # model
    encoder: str = option("tiny-vit", f"one of {', '.join(ENCODERS)}")
    weights: str | None = option(None, "local backbone weights (folder or file); none: random")
    geometry: str = option("lorentz", f"one of {', '.join(GEOMETRIES)}")
    embed_dim: int = option(128, "embedding dimension")
    init_temperature: float = option(0.07, "initial InfoNCE temperature (learnt)")
    # optimisation
    lr: float = option(2e-5, "peak AdamW learning rate")
    min_lr: float = option(0.0, "learning rate at the end of the cosine decay")
    warmup_steps: int = option(500, "linear warmup from 0 to lr")
    max_steps: int = option(5000, "optimizer steps in all (per rank; all ranks step together)")
    beta1: float = option(0.9, "AdamW beta1")
    beta2: float = option(0.999, "AdamW beta2")
    weight_decay: float = option(0.2, "AdamW decay of weight matrices (not gains, biases, logs)")
    grad_clip: float = option(1.0, "max global gradient norm (0: no clipping)")
    # bookkeeping
    output: str = option("train_out", "local output folder, shared by all ranks")
    checkpoint_every: int = option(1000, "steps between checkpoints (and one at the end)")
    keep_checkpoints: int = option(3, "newest checkpoints kept on disk")
    log_every: int = option(10, "steps between metrics lines")
    seed: int = option(0, "seeds model init, data order and augmentation")
    resume: bool = option(False, "continue from the newest checkpoint in --output, if any")
    device: str = option("auto", "auto (cuda when available), cuda or cpu")


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """TrainConfig from ``--field value`` options; unknown or malformed options exit with 2."""
    return parse_dataclass(
        TrainConfig, argv, "python -m training.train", __doc__, dashed_aliases=False
    )


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of update ``step`` (0-based): linear warmup, then cosine to min_lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_steps = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


class EntailmentModel(nn.Module):
    """Encoder + loss as one module, so DDP syncs the temperature with the encoder weights."""

    def __init__(self, encoder: nn.Module, loss: EntailmentLoss) -> None:
        super().__init__()
        self.encoder = encoder
        self.loss = loss

    def forward(
        self, pixels: Tensor, parent_index: Tensor, child_index: Tensor, positive_mask: Tensor
    ) -> dict[str, Tensor]:
        """(N, 3, S, S) normalised crops and the batch's pairs -> EntailmentLoss's dict."""
        embeddings = self.encoder(pixels)
        return self.loss(embeddings, parent_index, child_index, positive_mask, self.encoder.curv)


class NonFiniteError(RuntimeError):
    """The loss or gradient norm is nan or inf: stop before the update corrupts the weights."""


def _setup_distributed(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device) from torchrun's environment; one process without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device_name not in ("auto", "cuda", "cpu"):
        raise InputError(f"--device must be auto, cuda or cpu, got {device_name!r}")
    if device_name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda but no CUDA device is visible")
    cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, device


def _gather(tensor: Tensor, world: int, device: torch.device) -> Tensor:
    """(world, ...) stack of every rank's ``tensor`` (same shape on all ranks), on the CPU."""
    if world == 1:
        return tensor[None].cpu()
    local = tensor.to(device)  # nccl gathers CUDA tensors only
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local)
    return torch.stack(parts).cpu()


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and conv kernels only: not on biases, norm gains or the learnt
    log-curvature, log-scale and log-temperature (decay would pull those towards 1)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def _checkpoint_dirs(output: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a partial one never has its final name)."""
    root = output / "checkpoints"
    return sorted(root.glob("step-" + "[0-9]" * 8)) if root.is_dir() else []


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

    Args:
        data_states: (world, 1 + 2W) int64, DataState.to_tensor of every rank.
        rng_states: "cpu" (world, 5056) uint8, and "cuda" when training on GPUs.
    """
    final = output / "checkpoints" / f"step-{step:08d}"
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    weights = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
    save_file(weights, partial / "model.safetensors", metadata={"step": str(step)})
    state = {
        "step": step,
        "samples_seen": samples_seen,
        "world_size": world,
        "optimizer": optimizer.state_dict(),
        "data_states": data_states,
        "rng_states": rng_states,
        "config": asdict(config),
    }
    torch.save(state, partial / "state.pt")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    for old in _checkpoint_dirs(output)[: -max(1, config.keep_checkpoints)]:
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
        InputError: state.pt is not a weights-only file (a pickle with code is refused, never
            run), or the checkpoint was made with another world size or data settings.
    """
    try:
        state = torch.load(directory / "state.pt", map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0]
        raise InputError(
            f"refusing {directory / 'state.pt'}: not a weights-only file ({reason})"
        ) from err
    saved = state["config"]
    changed = [key for key in RESUME_KEYS if saved.get(key) != getattr(config, key)]
    if state["world_size"] != world or changed:
        raise InputError(
            f"{directory} was made with world size {state['world_size']} and "
            f"{ {key: saved.get(key) for key in changed} }; resuming exactly needs "
            f"world size {world} and the same {', '.join(RESUME_KEYS)}"
        )
    model.load_state_dict(load_file(directory / "model.safetensors", device=str(device)))
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng_states"]["cpu"][rank])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["rng_states"]["cuda"][rank], device)
    data_state = DataState.from_tensor(state["data_states"][rank])
    return int(state["step"]), data_state, float(state["samples_seen"])


def _rng_states(world: int, device: torch.device) -> dict[str, Tensor]:
    states = {"cpu": _gather(torch.get_rng_state(), world, device)}
    if device.type == "cuda":
        states["cuda"] = _gather(torch.cuda.get_rng_state(device), world, device)
    return states


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the lines up to ``step``: a run that died after its last checkpoint logged more (and
    maybe half a line)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError):
            continue
    path.write_text("".join(kept))


def _check_config(config: TrainConfig) -> None:
    """Option values the loop cannot run with: one InputError line (exit code 2)."""
    counts = ("batch_pairs", "max_steps", "checkpoint_every", "log_every", "keep_checkpoints")
    bad = [f"--{name} {getattr(config, name)}" for name in counts if getattr(config, name) < 1]
    bad += [f"--{name} {getattr(config, name)}" for name in ("num_workers", "warmup_steps",
            "shuffle_buffer", "lr", "min_lr", "weight_decay", "grad_clip")
            if getattr(config, name) < 0]  # fmt: skip
    if bad:
        raise InputError(f"invalid options: {', '.join(bad)}")


def train(config: TrainConfig) -> dict[str, Tensor]:
    """Run (or resume) training; returns this rank's final parameters as CPU tensors."""
    _check_config(config)
    rank, world, device = _setup_distributed(config.device)
    output = Path(config.output)
    urls = expand_shards(config.shards)
    samples_per_epoch = epoch_samples(urls)

    # model: the same init on every rank (DDP also broadcasts rank 0's weights)
    torch.manual_seed(config.seed)
    try:
        encoder = build_encoder(config.encoder, config.weights, config.embed_dim, config.geometry)
    except (ValueError, FileNotFoundError) as err:
        raise InputError(str(err)) from err
    loss_fn = EntailmentLoss(config.geometry, config.init_temperature)
    model = EntailmentModel(encoder, loss_fn).to(device)
    optimizer = torch.optim.AdamW(
        _param_groups(model, config.weight_decay),
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        fused=device.type == "cuda",
    )
    # augmentation draws from the global RNG: a different stream per rank
    torch.manual_seed(config.seed + 1_000_003 * (rank + 1))

    step, data_state, seen_samples = 0, DataState.start(config.num_workers), 0.0
    checkpoints = _checkpoint_dirs(output)
    if checkpoints and not config.resume:
        raise InputError(
            f"{output} holds checkpoints: pass --resume to continue, or pick another --output"
        )
    if checkpoints:
        step, data_state, seen_samples = load_checkpoint(
            checkpoints[-1], model, optimizer, config, rank, world, device
        )
    if rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        _truncate_metrics(output / "metrics.jsonl", step)
        resolved = {
            **asdict(config),
            "world_size": world,
            "device": str(device),
            "shards_listed": len(urls),
            "epoch_samples": samples_per_epoch,
            "resumed_from_step": step,
            "torch": torch.__version__,
        }
        write_json(str(output / "config.json"), resolved)
        print(
            f"training {config.encoder} ({config.geometry}) on {world} x {device}: "
            f"{len(urls)} shards, {samples_per_epoch} samples/epoch, from step {step}",
            file=sys.stderr,
        )

    ddp_model = model
    if world > 1:
        ddp_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    stream = PairStream(
        urls,
        config.batch_pairs,
        encoder.image_size,
        mean_colour(encoder.image_mean),
        seed=config.seed,
        rank=rank,
        world_size=world,
        shuffle_buffer=config.shuffle_buffer,
        state=DataState(list(data_state.epochs), list(data_state.batches), data_state.next_worker),
    )
    batches = iter(make_loader(stream, config.num_workers, pin_memory=device.type == "cuda"))
    augment = Augment(encoder.image_size, encoder.image_mean, encoder.image_std, config.augment)
    augment = augment.to(device).train()
    log_bounds = (math.log(loss_fn.min_temperature), math.log(loss_fn.max_temperature))

    metrics = open(output / "metrics.jsonl", "a") if rank == 0 else None  # noqa: SIM115
    # Redrawn in place on a terminal; in a log file one line every 30 s is enough.
    progress = tqdm(
        total=config.max_steps,
        initial=step,
        disable=rank != 0,
        desc="train",
        mininterval=0.1 if sys.stderr.isatty() else 30.0,
    )
    started = time.perf_counter()
    try:
        while step < config.max_steps:
            step_started = time.perf_counter()
            batch = next(batches)
            data_state.advance(batch)
            batch = batch.to(device, non_blocking=True)
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # forward: augmentation in float32, encoder in bf16 on CUDA, loss maths in float32
            pixels = augment(batch.pixels)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = ddp_model(pixels, batch.parent_index, batch.child_index, batch.positive_mask)
            out["loss"].backward()
            # clip: one batch of near-identical crops can give a huge gradient
            grad_norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), config.grad_clip if config.grad_clip > 0 else math.inf
            )

            # guard: sum over ranks so every rank takes the same decision
            counts = [batch.parent_index.numel(), batch.pixels.shape[0], batch.samples_completed]
            stats = torch.stack(
                [
                    out["loss"].detach().float(),
                    grad_norm.detach().float(),
                    *(torch.tensor(float(c), device=device) for c in counts),
                ]
            )
            if world > 1:
                dist.all_reduce(stats)
            loss, grad_norm, pairs, crops, samples = (float(v) for v in stats.cpu())
            if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                raise NonFiniteError(
                    f"step {step}: loss {loss / world}, gradient norm {grad_norm / world}"
                )
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            # the temperature clamp passes no gradient beyond a bound: pull the log back inside
            loss_fn.log_temperature.data.clamp_(*log_bounds)
            step += 1
            seen_samples += samples

            progress.update(1)
            if metrics is not None and (step % config.log_every == 0 or step == config.max_steps):
                curv = encoder.curv
                record = {
                    "step": step,
                    "loss": loss / world,
                    "parent_to_child": float(out["parent_to_child"].detach()),
                    "child_to_parent": float(out["child_to_parent"].detach()),
                    "lr": lr,
                    "temperature": float(out["temperature"]),
                    "curv": None if curv is None else float(curv.detach()),
                    "grad_norm": grad_norm / world,
                    "pairs": int(pairs),
                    "crops": int(crops),
                    "epochs_seen": seen_samples / samples_per_epoch,
                    "seconds": time.perf_counter() - step_started,
                    "elapsed": time.perf_counter() - started,
                }
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
            if step % config.checkpoint_every == 0 or step == config.max_steps:
                data_states = _gather(data_state.to_tensor(), world, device)
                rng_states = _rng_states(world, device)
                if rank == 0:
                    save_checkpoint(
                        output,
                        step,
                        model,
                        optimizer,
                        data_states,
                        rng_states,
                        config,
                        world,
                        seen_samples,
                    )
                if world > 1:
                    dist.barrier()
    finally:
        progress.close()
        if metrics is not None:
            metrics.close()
    if rank == 0:
        save_encoder(encoder, output / "encoder.safetensors")
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    try:
        train(config)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except NonFiniteError as err:
        print(
            f"error: non-finite loss or gradient ({err}); weights not updated; resume from "
            f"the last checkpoint with a lower --lr",
            file=sys.stderr,
        )
        return EXIT_NON_FINITE
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
