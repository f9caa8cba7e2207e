"""The training loop: fine-tune an encoder with the entailment loss on streamed shards, DDP-ready.

Flat, nanoGPT-style: config (training.train_config), setup, one loop (data, one step, log,
checkpoint); the step itself (forward, backward, clip, guard, update) is training.step.

Run: ``python -m training.train --shards 'DIR/train-{000000..000009}.tar' --encoder tiny-vit
--output OUT`` (also under ``torchrun``; gloo on CPU, nccl on CUDA). Every TrainConfig field is a
``--field value`` option; booleans also take the bare flag (``--resume``).

Outputs (OUT is a local folder, shared between ranks; names in schemas.training_layout):
``config.json`` (the resolved config), ``metrics.jsonl`` (one JSON object per logged step),
``checkpoints/step-NNNNNNNN/`` (training.checkpoints) and ``encoder.safetensors``
(training.encoders.save_encoder) at the end. The learning-rate schedule is a pure function of
the step, so the step is its state.

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
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from hierdata.errors import InputError, run_command
from hierdata.io import write_json
from schemas.training_layout import TrainOutput
from training.checkpoints import checkpoint_dirs, load_checkpoint, save_checkpoint
from training.cli import parse_dataclass
from training.data import (
    DataState,
    PairBatch,
    PairStream,
    epoch_samples,
    expand_shards,
    make_loader,
)
from training.encoders import HierEncoder, save_encoder
from training.images import Augment, mean_colour
from training.runtime import (
    barrier,
    end_distributed,
    gather,
    gather_rng_states,
    setup_distributed,
)
from training.scalars import ScalarLog
from training.step import (
    NonFiniteError,
    StepTotals,
    build_model,
    train_step,
)
from training.train_config import TrainConfig, check_config

EXIT_NON_FINITE = 3


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """TrainConfig from ``--field value`` options; unknown or malformed options exit with 2."""
    return parse_dataclass(
        TrainConfig, argv, "python -m training.train", __doc__, dashed_aliases=False
    )


def lr_factor(step: int, config: TrainConfig) -> float:
    """Schedule factor of update ``step`` (0-based): linear warmup from 0 to 1, then cosine to
    ``min_lr / lr``. Every optimizer group's learning rate is its peak (``base_lr``: --lr for
    the backbone, --head_lr for the trainable geometry) times this factor."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    floor = config.min_lr / config.lr if config.lr > 0 else 0.0
    decay_steps = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / decay_steps)
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (1.0 - floor)


def lr_at(step: int, config: TrainConfig) -> float:
    """The backbone's learning rate at update ``step``: --lr times lr_factor."""
    return config.lr * lr_factor(step, config)


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


def resume_or_start(
    config: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rank: int,
    world: int,
    device: torch.device,
) -> tuple[int, DataState, float]:
    """(step, this rank's DataState, samples seen by all ranks): from the newest checkpoint
    with --resume, else the start; a folder with checkpoints needs --resume."""
    checkpoints = checkpoint_dirs(Path(config.output))
    if checkpoints and not config.resume:
        raise InputError(
            f"{Path(config.output)} holds checkpoints: pass --resume to continue, or pick "
            f"another --output"
        )
    if checkpoints:
        return load_checkpoint(checkpoints[-1], model, optimizer, config, rank, world, device)
    return 0, DataState.start(config.num_workers), 0.0


def write_run_config(
    config: TrainConfig,
    world: int,
    device: torch.device,
    urls: Sequence[str],
    samples_per_epoch: int,
    step: int,
) -> None:
    """Rank 0: config.json (the resolved config), metrics.jsonl cut back to ``step``, a banner."""
    layout = TrainOutput(config.output)
    Path(config.output).mkdir(parents=True, exist_ok=True)
    _truncate_metrics(Path(layout.metrics_jsonl), step)
    resolved = {
        **asdict(config),
        "world_size": world,
        "device": str(device),
        "shards_listed": len(urls),
        "epoch_samples": samples_per_epoch,
        "resumed_from_step": step,
        "torch": torch.__version__,
    }
    write_json(layout.config_json, resolved)
    print(
        f"training {config.encoder} ({config.geometry}) on {world} x {device}: "
        f"{len(urls)} shards, {samples_per_epoch} samples/epoch, from step {step}",
        flush=True,  # stdout: stderr is kept for warnings and the one error line
    )


def batch_stream(
    config: TrainConfig,
    urls: list[str],
    encoder: HierEncoder,
    rank: int,
    world: int,
    data_state: DataState,
    device: torch.device,
) -> Iterator[PairBatch]:
    """This rank's endless batches of pairs, continuing from ``data_state`` (copied)."""
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
    return iter(make_loader(stream, config.num_workers, pin_memory=device.type == "cuda"))


def metrics_record(
    step: int,
    lrs: tuple[float, float],
    out: dict[str, Tensor],
    totals: StepTotals,
    encoder: HierEncoder,
    world: int,
    epochs_seen: float,
    seconds: float,
    elapsed: float,
) -> dict:
    """One metrics.jsonl line: loss, both directions, the backbone's and the geometry head's
    learning rates, the trainable geometry (temperature, curvature, embedding scale, mean radius
    of this rank's batch), gradient norm (mean over ranks), pairs and crops (sums), epochs seen
    and timings."""
    curv, alpha = encoder.curv, encoder.alpha
    return {
        "step": step,
        "loss": totals.loss / world,
        "parent_to_child": float(out["parent_to_child"].detach()),
        "child_to_parent": float(out["child_to_parent"].detach()),
        "lr": lrs[0],
        "head_lr": lrs[1],
        "temperature": float(out["temperature"]),
        "curv": None if curv is None else float(curv.detach()),
        "alpha": None if alpha is None else float(alpha.detach()),
        "mean_radius": float(out["mean_radius"]),
        "grad_norm": totals.grad_norm / world,
        "pairs": int(totals.pairs),
        "crops": int(totals.crops),
        "epochs_seen": epochs_seen,
        "seconds": seconds,
        "elapsed": elapsed,
    }


def train(config: TrainConfig) -> dict[str, Tensor]:
    """Run (or resume) training; returns this rank's final parameters as CPU tensors."""
    check_config(config)
    rank, world, device = setup_distributed(config.device)
    output, layout = Path(config.output), TrainOutput(config.output)
    urls = expand_shards(config.shards)
    samples_per_epoch = epoch_samples(urls)
    model, optimizer = build_model(config, device)
    encoder = model.encoder
    # augmentation draws from the global RNG: a different stream per rank
    torch.manual_seed(config.seed + 1_000_003 * (rank + 1))
    step, data_state, seen_samples = resume_or_start(config, model, optimizer, rank, world, device)
    if rank == 0:
        write_run_config(config, world, device, urls, samples_per_epoch, step)
    ddp_model = model
    if world > 1:
        ddp_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    batches = batch_stream(config, urls, encoder, rank, world, data_state, device)
    augment = Augment(encoder.image_size, encoder.image_mean, encoder.image_std, config.augment)
    augment = augment.to(device).train()

    metrics = open(layout.metrics_jsonl, "a") if rank == 0 else None  # noqa: SIM115
    scalars = ScalarLog(layout.tensorboard_dir, step) if rank == 0 else None
    # Redrawn in place on a terminal; in a log file one line every 30 s is enough.
    progress = tqdm(total=config.max_steps, initial=step, disable=rank != 0, desc="train",
                    file=sys.stdout, mininterval=0.1 if sys.stdout.isatty() else 30.0)  # fmt: skip
    started = time.perf_counter()
    try:
        while step < config.max_steps:
            step_started = time.perf_counter()
            batch = next(batches)
            data_state.advance(batch)
            factor = lr_factor(step, config)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            batch = batch.to(device, non_blocking=True)
            out, totals = train_step(
                ddp_model, model, optimizer, augment, batch, config.grad_clip, step, world
            )
            step += 1
            seen_samples += totals.samples

            progress.update(1)
            if metrics is not None and (step % config.log_every == 0 or step == config.max_steps):
                now = time.perf_counter()
                lrs = (config.lr * factor, config.head_lr * factor)
                record = metrics_record(step, lrs, out, totals, encoder, world,
                                        seen_samples / samples_per_epoch, now - step_started,
                                        now - started)  # fmt: skip
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                scalars.write(record)
                progress.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lrs[0]:.2e}")
            if step % config.checkpoint_every == 0 or step == config.max_steps:
                # every rank gathers; rank 0 writes, and the others wait for it
                data_states = gather(data_state.to_tensor(), world, device)
                rng_states = gather_rng_states(world, device)
                if rank == 0:
                    save_checkpoint(output, step, model, optimizer, data_states, rng_states,
                                    config, world, seen_samples)  # fmt: skip
                barrier(world)
    finally:
        progress.close()
        if metrics is not None:
            metrics.close()
            scalars.close()
    if rank == 0:
        save_encoder(encoder, layout.encoder)
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def _train_command(config: TrainConfig) -> int:
    """train, with a non-finite stop as its own exit code; the process group always ends."""
    try:
        train(config)
    except NonFiniteError as err:
        print(
            f"error: non-finite loss or gradient ({err}); weights not updated; resume from "
            f"the last checkpoint with a lower --lr",
            file=sys.stderr,
        )
        return EXIT_NON_FINITE
    finally:
        end_distributed()
    return 0


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    return run_command(lambda: _train_command(config))


if __name__ == "__main__":
    sys.exit(main())
