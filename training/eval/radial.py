"""Radial-embedding probe: do general labels sit near the origin and specific ones further out?

Exterior angles seen from a root point, embedding radius, and Kendall tau of radius vs depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import Tensor

from training.geometry import euclidean_exterior_angle, exterior_angle, lorentz_distance


def radius(embeddings: Tensor, curv: float | None = None) -> Tensor:
    """Distance from the origin: geodesic ``asinh(sqrt(c) |x_s|) / sqrt(c)``, or ``|x|``.

    Args:
        embeddings: (N, D) Lorentz space components (``curv`` given) or Euclidean vectors.

    Returns:
        (N,) radii, float32 (float64 for float64 input).
    """
    if curv is None:
        return embeddings.norm(dim=-1)
    return lorentz_distance(embeddings, torch.zeros_like(embeddings), float(curv))


def angles_from_root(
    embeddings: Tensor, root: Tensor | None = None, curv: float | None = None
) -> Tensor:
    """Exterior angle ``ext(root, x)`` at the root towards every embedding.

    Small when x lies further out along the root's ray (inside its entailment cone), pi/2
    sideways, near pi back towards the origin.

    Args:
        embeddings: (N, D) points.
        root: (D,) apex; default the mean embedding (for Lorentz, the mean of the space
            components, itself a point on the hyperboloid).
        curv: Lorentz curvature, or None for the Euclidean angle.

    Returns:
        (N,) angles in [1.4e-3, pi - 1.4e-3] (see training.geometry).
    """
    if root is None:
        root = embeddings.mean(0)
    apex = root.to(embeddings)[None, :].expand_as(embeddings)
    if curv is None:
        return euclidean_exterior_angle(apex, embeddings)
    return exterior_angle(apex, embeddings, float(curv))


def kendall_tau(radii: np.ndarray, depths: np.ndarray) -> tuple[float, float]:
    """Kendall tau-b (ties allowed, as depths have many) of radius vs tree depth, and p-value.

    +1 when every deeper item lies further from the origin, -1 for the reverse.
    """
    result = kendalltau(radii, depths)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class DepthStats:
    """The crops at one label-tree depth: how many, their mean radius and mean exterior angle
    from the root (radians)."""

    depth: int
    items: int
    mean_radius: float
    mean_angle_from_root: float


@dataclass(frozen=True)
class RadialProbe:
    """Kendall tau of radius vs depth (None when undefined), its p-value, and per-depth stats."""

    kendall_tau: float | None
    p_value: float
    per_depth: list[DepthStats]


def radial_probe(
    embeddings: Tensor, depths: np.ndarray, curv: float | None = None, root: Tensor | None = None
) -> RadialProbe:
    """Radius-depth Kendall tau and per-depth mean radius and root angle.

    Args:
        embeddings: (N, D) crop embeddings; depths: (N,) tree depth of each crop's label.
        curv, root: see angles_from_root.

    Returns:
        The probe, with one DepthStats per depth present (ascending).
    """
    depths = np.asarray(depths)
    radii = radius(embeddings, curv).double().cpu().numpy()
    angles = angles_from_root(embeddings, root, curv).double().cpu().numpy()
    tau, p_value = kendall_tau(radii, depths)
    per_depth = [
        DepthStats(
            depth=int(d),
            items=int((depths == d).sum()),
            mean_radius=float(radii[depths == d].mean()),
            mean_angle_from_root=float(angles[depths == d].mean()),
        )
        for d in np.unique(depths)
    ]
    return RadialProbe(tau if not math.isnan(tau) else None, p_value, per_depth)
