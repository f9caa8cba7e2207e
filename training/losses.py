"""The entailment training objective: bidirectional InfoNCE over exterior angles, in two forms.

"per_pair" (the default) is the paper's eq. 8 in both directions, combined as eq. 9: one term per
entailment pair, whose denominator is that pair's positive plus N(x), the crops with no
entailment relation to the anchor. "supcon_out" is the SupCon "L_out" form: one term per anchor,
the mean over its positives, every other crop in the denominator (the anchor's own parents, or
children, included). Angles come from training.geometry (Lorentz or Euclidean); the loss maths
runs in float32 with autocast disabled, whatever precision the encoder ran in.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from training.geometry import pairwise_euclidean_exterior_angle, pairwise_exterior_angle

GEOMETRIES = ("lorentz", "euclidean")
LOSSES = ("per_pair", "supcon_out")


def per_pair_infonce(logits: Tensor, positives: Tensor, negatives: Tensor) -> Tensor:
    """The paper's eq. 8: one InfoNCE term per (anchor, positive) pair, averaged over the pairs.

    ``loss = mean_{(a, p): Pos[a, p]} -log( exp(l_ap) / (exp(l_ap) + sum_{n in N(a)} exp(l_an)) )``
    ``      = mean softplus( logsumexp_{n in N(a)} l_an - l_ap )``.

    Args:
        logits: (A, K) scores ``l_ak`` of anchor a against column k.
        positives: (A, K) bool ``Pos``, at least one True in all.
        negatives: (A, K) bool ``N``, disjoint from ``Pos``; a row may be empty (its terms are 0).

    Returns:
        0-dim loss.
    """
    has_negative = negatives.any(dim=1)
    masked = logits.masked_fill(~negatives, -math.inf)
    # A row without negatives would make logsumexp's gradient 0 * nan: give it finite dummies and
    # drop its value below, so only its (zero) share of the gradient passes through.
    masked = torch.where(has_negative[:, None], masked, torch.zeros_like(masked))
    negative_lse = torch.where(has_negative, torch.logsumexp(masked, dim=1), -math.inf)
    anchor, positive = positives.nonzero(as_tuple=True)
    return softplus(negative_lse[anchor] - logits[anchor, positive]).mean()


def multi_positive_infonce(logits: Tensor, positives: Tensor, candidates: Tensor) -> Tensor:
    """Multi-positive InfoNCE averaged over anchors (rows).

    ``loss = mean_a  -1/|Pos(a)| sum_{p in Pos(a)} [ l_ap - log sum_{k in Cand(a)} exp(l_ak) ]``

    Args:
        logits: (A, K) scores ``l_ak`` of anchor a against candidate column k.
        positives: (A, K) bool ``Pos``; a subset of ``candidates`` with at least one per row.
        candidates: (A, K) bool ``Cand``, the columns in each anchor's softmax denominator.

    Returns:
        0-dim loss.
    """
    log_norm = torch.logsumexp(logits.masked_fill(~candidates, -math.inf), dim=1, keepdim=True)
    # torch.where rather than a product: 0 * (-inf) at excluded entries would be nan.
    log_prob = torch.where(positives, logits - log_norm, 0.0)
    return (-log_prob.sum(1) / positives.sum(1)).mean()


def bidirectional_infonce(
    angles: Tensor, positive_mask: Tensor, temperature: Tensor | float, form: str = "per_pair"
) -> tuple[Tensor, Tensor]:
    """Both directions of the entailment InfoNCE from a matrix of exterior angles.

    For a parent x (nearer the origin) and its child y further out along x's ray,
    ``ext(x, y) = 0`` and ``ext(y, x) = pi``. So the parent->child score ``beta = pi - ext(x, y)``
    and the child->parent score ``alpha = ext(y, x)`` are both pi for a perfect pair and larger
    means "more entailed". Logits are ``score / temperature``: ``l_ak = (pi - angles[a, k]) / T``
    parent -> child (anchor a the parent, positives its children ``mask[a, k]``) and
    ``l_ak = angles[a, k] / T`` child -> parent (anchor a the child, positives ``mask[k, a]``).

    "per_pair" (eq. 8): one term per entailment pair (every True of ``positive_mask``), averaged
    over pairs; the negatives N(a) are the crops with no entailment relation to the anchor, so a
    crop that entails the anchor or that the anchor entails is never a negative (nor is a itself):
    ``L_p2c = mean_{mask[a, p]} -log(exp(l_ap) / (exp(l_ap) + sum_{n in N(a)} exp(l_an)))`` with
    ``N(a) = {n != a : not mask[a, n] and not mask[n, a]}``; ``L_c2p`` likewise from the child.

    "supcon_out" (SupCon L_out): one term per anchor with a positive, the mean over its positives,
    averaged over anchors; the denominator holds every crop but a itself:
    ``L_p2c = mean_a -1/|Pos(a)| sum_{p in Pos(a)} log(exp(l_ap) / sum_{k != a} exp(l_ak))``.

    Args:
        angles: (N, N) ``angles[i, j] = ext(e_i, e_j)``, exterior angle at crop i towards crop j.
        positive_mask: (N, N) bool, ``[i, j]`` True iff crop i entails crop j; False diagonal.
        temperature: positive 0-dim tensor or float ``T``.
        form: one of LOSSES.

    Returns:
        ``(L_p2c, L_c2p)``, two 0-dim losses.
    """
    if form not in LOSSES:
        raise ValueError(f"form must be one of {LOSSES}, got {form!r}")
    p2c_logits, c2p_logits = (math.pi - angles) / temperature, angles / temperature
    n = angles.shape[0]
    not_self = ~torch.eye(n, dtype=torch.bool, device=angles.device)
    if form == "per_pair":
        unrelated = ~(positive_mask | positive_mask.T) & not_self
        return (
            per_pair_infonce(p2c_logits, positive_mask, unrelated),
            per_pair_infonce(c2p_logits, positive_mask.T, unrelated),
        )
    parents = positive_mask.any(dim=1).nonzero()[:, 0]
    children = positive_mask.any(dim=0).nonzero()[:, 0]
    return (
        multi_positive_infonce(p2c_logits[parents], positive_mask[parents], not_self[parents]),
        multi_positive_infonce(c2p_logits[children], positive_mask.T[children], not_self[children]),
    )


def _positive_mask(
    n: int, parent_index: Tensor, child_index: Tensor, positive_mask: Tensor | None
) -> Tensor:
    """(N, N) bool parent-row x child-column mask: ``positive_mask`` OR the pairs, no diagonal."""
    if parent_index.shape != child_index.shape or parent_index.ndim != 1:
        raise ValueError("parent_index and child_index must be 1-D and of equal length")
    if parent_index.numel() == 0:
        raise ValueError("the batch holds no entailment pairs")
    if bool((parent_index == child_index).any()):
        raise ValueError("a pair has the same crop as parent and child")
    if positive_mask is None:
        mask = torch.zeros((n, n), dtype=torch.bool, device=parent_index.device)
    elif positive_mask.shape != (n, n):
        shape = tuple(positive_mask.shape)
        raise ValueError(f"positive_mask must have shape {(n, n)}, got {shape}")
    else:
        mask = positive_mask.to(torch.bool).clone()
    # The pairs are positives by definition, whatever extra positives the mask adds.
    mask[parent_index, child_index] = True
    # A crop never entails itself; its own column is excluded from its candidates anyway.
    return mask.fill_diagonal_(False)


class EntailmentLoss(nn.Module):
    """Bidirectional InfoNCE entailment loss with a learnable temperature.

    See bidirectional_infonce for the exact formulas. The total (eq. 9) is the mean of the two
    directions (the paper's combination was lost from the text we have; a sum would differ by a
    constant factor, which AdamW's update ignores). The temperature is learnt through its log
    and clamped to ``[min_temperature, max_temperature]`` when used (the clamp passes no
    gradient once a bound is reached, so a training loop may also clamp ``log_temperature``
    after each step).

    Args:
        geometry: "lorentz" (exterior angles on the hyperboloid) or "euclidean".
        form: one of LOSSES: "per_pair" (the paper's eq. 8) or "supcon_out".
        init_temperature: initial temperature.
        min_temperature, max_temperature: inclusive bounds of the temperature.
    """

    def __init__(
        self,
        geometry: str = "lorentz",
        init_temperature: float = 0.07,
        min_temperature: float = 0.01,
        max_temperature: float = 1.0,
        form: str = "per_pair",
    ) -> None:
        super().__init__()
        if geometry not in GEOMETRIES:
            raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
        if form not in LOSSES:
            raise ValueError(f"loss form must be one of {LOSSES}, got {form!r}")
        if not 0 < min_temperature <= init_temperature <= max_temperature:
            raise ValueError(
                "need 0 < min_temperature <= init_temperature <= max_temperature, got "
                f"{min_temperature}, {init_temperature}, {max_temperature}"
            )
        self.geometry = geometry
        self.form = form
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature
        self.log_temperature = nn.Parameter(torch.tensor(math.log(init_temperature)))

    @property
    def temperature(self) -> Tensor:
        """0-dim float32 temperature, clamped to its bounds."""
        return self.log_temperature.float().exp().clamp(self.min_temperature, self.max_temperature)

    def forward(
        self,
        embeddings: Tensor,
        parent_index: Tensor,
        child_index: Tensor,
        positive_mask: Tensor | None = None,
        curv: float | Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Loss over the batch's pairs.

        Args:
            embeddings: (N, D) one row per unique crop; for "lorentz" the space components of
                points on the hyperboloid (after exp_map0), for "euclidean" plain vectors.
            parent_index: (P,) int64 row of each pair's parent (the containing crop).
            child_index: (P,) int64 row of each pair's child.
            positive_mask: optional (N, N) bool, ``[i, j]`` True iff crop i entails crop j;
                adds positives beyond the pairs (which always count). Its diagonal is ignored.
            curv: curvature ``c`` (float or 0-dim tensor); required for "lorentz", unused otherwise.

        Returns:
            dict of 0-dim float32 tensors (float64 for float64 embeddings): "loss" (mean of the
            two directions), "parent_to_child", "child_to_parent", and detached "temperature"
            and "mean_radius" (the crops' mean distance from the origin: geodesic for "lorentz").
        """
        if self.geometry == "lorentz" and curv is None:
            raise ValueError("the lorentz geometry needs the curvature curv")
        mask = _positive_mask(embeddings.shape[0], parent_index, child_index, positive_mask)
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            points = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
            norms = points.detach().norm(dim=-1)
            if self.geometry == "lorentz":
                angles = pairwise_exterior_angle(points, points, curv)
                root_curv = torch.as_tensor(curv, dtype=norms.dtype).detach().sqrt()
                norms = torch.asinh(root_curv * norms) / root_curv
            else:
                angles = pairwise_euclidean_exterior_angle(points, points)
            temperature = self.temperature
            parent_to_child, child_to_parent = bidirectional_infonce(
                angles, mask, temperature, self.form
            )
        return {
            "loss": (parent_to_child + child_to_parent) / 2,
            "parent_to_child": parent_to_child,
            "child_to_parent": child_to_parent,
            "temperature": temperature.detach(),
            "mean_radius": norms.mean(),
        }
