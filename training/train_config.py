"""The training run's configuration: one dataclass with commented defaults, and the option
values the loop cannot run with. Every field is a ``--field value`` option of training.train.
"""

import math
from dataclasses import dataclass, fields

from hierdata.errors import InputError
from training.cli import option
from training.encoders import ENCODERS
from training.losses import GEOMETRIES, LOSSES


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
    start_radius: float = option(1.0, "lorentz: geodesic radius the embeddings start near")
    loss: str = option("per_pair", f"one of {', '.join(LOSSES)} (per_pair: the paper's eq. 8)")
    # optimisation
    lr: float = option(2e-5, "peak AdamW learning rate of the backbone")
    head_lr: float = option(1e-3, "peak learning rate of projection, curvature, scale, temperature")
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


def check_config(config: TrainConfig) -> None:
    """Option values the loop cannot run with: one InputError line (exit code 2)."""
    counts = ("batch_pairs", "max_steps", "checkpoint_every", "log_every", "keep_checkpoints")
    bad = [f"--{name} {getattr(config, name)}" for name in counts if getattr(config, name) < 1]
    bad += [f"--{name} {getattr(config, name)}" for name in ("num_workers", "warmup_steps",
            "shuffle_buffer", "lr", "head_lr", "min_lr", "weight_decay", "grad_clip")
            if getattr(config, name) < 0]  # fmt: skip
    # nan passes every comparison above (nan < 0 is False) and inf overflows the schedule.
    bad += [
        f"--{f.name} {getattr(config, f.name)}"
        for f in fields(config)
        if f.type is float and not math.isfinite(getattr(config, f.name))
    ]
    if bad:
        raise InputError(f"invalid options: {', '.join(bad)}")
