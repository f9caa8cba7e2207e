"""One optimisation step: the module that joins encoder and loss, its optimizer, and the
forward, backward, clip, guard and update of one batch (the body of training.train's loop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from hierdata.errors import InputError
from training.data import PairBatch
from training.encoders import build_encoder
from training.images import Augment
from training.losses import EntailmentLoss
from training.runtime import sum_over_ranks
from training.train_config import TrainConfig


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


def is_head_parameter(name: str) -> bool:
    """The trainable geometry: the projection head, log-curvature, log-scale and
    log-temperature (EntailmentModel parameter names), as opposed to the backbone."""
    return name.startswith(("encoder.projection.", "loss.")) or name in (
        "encoder.log_curv",
        "encoder.log_alpha",
    )


def param_groups(model: nn.Module, weight_decay: float, lr: float, head_lr: float) -> list[dict]:
    """AdamW groups: backbone and trainable geometry (is_head_parameter) each with its own peak
    learning rate (``base_lr``; the loop scales it by the schedule), and weight decay on matrices
    and conv kernels only: not on biases, norm gains or the learnt log-curvature, log-scale and
    log-temperature (decay would pull those towards 1)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = []
    for head, base_lr in ((False, lr), (True, head_lr)):
        params = [p for n, p in named if is_head_parameter(n) == head]
        for decay in (True, False):
            chosen = [p for p in params if (p.ndim >= 2) == decay]
            groups.append({"params": chosen, "weight_decay": weight_decay if decay else 0.0,
                           "base_lr": base_lr, "lr": base_lr})  # fmt: skip
    return groups


def build_model(
    config: TrainConfig, device: torch.device
) -> tuple[EntailmentModel, torch.optim.Optimizer]:
    """The encoder and loss on ``device`` with their AdamW optimizer; seeded, so every rank
    starts from the same weights (DDP also broadcasts rank 0's)."""
    torch.manual_seed(config.seed)
    try:
        encoder = build_encoder(config.encoder, config.weights, config.embed_dim,
                                config.geometry, config.start_radius)  # fmt: skip
        loss_fn = EntailmentLoss(config.geometry, config.init_temperature, form=config.loss)
    except (ValueError, FileNotFoundError) as err:
        raise InputError(str(err)) from err
    model = EntailmentModel(encoder, loss_fn).to(device)
    optimizer = torch.optim.AdamW(
        param_groups(model, config.weight_decay, config.lr, config.head_lr),
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        fused=device.type == "cuda",
    )
    return model, optimizer


@dataclass(frozen=True)
class StepTotals:
    """One step's numbers summed over ranks (divide loss and grad_norm by the world size)."""

    loss: float
    grad_norm: float
    pairs: float
    crops: float
    samples: float


def train_step(
    ddp_model: nn.Module,
    model: EntailmentModel,
    optimizer: torch.optim.Optimizer,
    augment: Augment,
    batch: PairBatch,
    grad_clip: float,
    step: int,
    world: int,
) -> tuple[dict[str, Tensor], StepTotals]:
    """Forward, backward, clip, guard and update on one batch (already on the device).

    Args:
        grad_clip: max global gradient norm (0: no clipping); step: the update's index, for
            the error message; world: ranks, over which the guard sums.

    Returns:
        EntailmentLoss's dict and the step's totals over ranks.
    Raises:
        NonFiniteError: the loss or gradient norm is not finite on some rank (no update).
    """
    device = batch.pixels.device
    # forward: augmentation in float32, encoder in bf16 on CUDA, loss maths in float32
    pixels = augment(batch.pixels)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        out = ddp_model(pixels, batch.parent_index, batch.child_index, batch.positive_mask)
    out["loss"].backward()
    # clip: one batch of near-identical crops can give a huge gradient
    grad_norm = torch.nn.utils.clip_grad_norm_(
        model.parameters(), grad_clip if grad_clip > 0 else math.inf
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
    totals = StepTotals(*(float(v) for v in sum_over_ranks(stats, world).cpu()))
    if not (math.isfinite(totals.loss) and math.isfinite(totals.grad_norm)):
        raise NonFiniteError(
            f"step {step}: loss {totals.loss / world}, gradient norm {totals.grad_norm / world}"
        )
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    # the temperature clamp passes no gradient beyond a bound: pull the log back inside
    loss_fn = model.loss
    bounds = (math.log(loss_fn.min_temperature), math.log(loss_fn.max_temperature))
    loss_fn.log_temperature.data.clamp_(*bounds)
    return out, totals
