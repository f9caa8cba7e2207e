"""Radial-embedding probes: the exterior angle seen from an entailment root over entailment pairs
(the Radial Embeddings paper), and whether general labels sit near the origin (radius vs depth).

RE measures entailment u ⊃ v by the Euclidean exterior angle ``ext(u - r, v - r)`` with a root r
taking the origin's place: small when v lies further out along the ray from r through u. Lorentz
embeddings are read in the tangent space at the origin (log_map0), where the arithmetic
``u - r`` is Euclidean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import kendalltau, mannwhitneyu
from torch import Tensor

from training.geometry import euclidean_exterior_angle, lorentz_distance


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


def tangent_vectors(embeddings: Tensor, curv: float | None = None) -> Tensor:
    """(N, D) vectors in which the probe's Euclidean arithmetic runs: log_map0 of Lorentz space
    components (direction kept, length = geodesic radius), Euclidean vectors unchanged."""
    if curv is None:
        return embeddings
    norms = embeddings.norm(dim=-1, keepdim=True)
    # A point at the origin has no direction: its tangent vector is 0, not 0/0.
    return torch.where(norms > 0, embeddings * radius(embeddings, curv)[:, None] / norms, 0.0)


def root_angles(vectors: Tensor, parents: Tensor, children: Tensor, root: Tensor) -> Tensor:
    """RE's entailment angle ``ext(u - r, v - r)`` for pairs (u, v) = (vectors[parents[i]],
    vectors[children[i]]): (P,) radians, 0 when v lies beyond u on the ray from the root r."""
    shifted = vectors - root.to(vectors)[None, :]
    return euclidean_exterior_angle(shifted[parents], shifted[children])


@dataclass(frozen=True)
class EntailmentAngles:
    """RE's probe with one root: mean ``ext(u - r, v - r)`` (radians) over the entailment pairs
    and over as many unrelated pairs (the same u, a crop outside down(labels(u))), and the AUC:
    the probability that an entailment pair has the smaller angle (ties count 1/2; 0.5 = no
    signal, 1 = every entailment pair inside every unrelated one)."""

    root: str
    pairs: int
    entailed_mean: float
    unrelated_mean: float
    auc: float


def entailment_angles(
    vectors: Tensor,
    parents: np.ndarray,
    children: np.ndarray,
    unrelated: np.ndarray,
    root: Tensor,
    root_name: str,
) -> EntailmentAngles:
    """EntailmentAngles of pairs (parents[i], children[i]) against (parents[i], unrelated[i]).

    Args:
        vectors: (N, D) tangent_vectors of every crop; parents, children, unrelated: (P,) rows.
        root: (D,) the entailment root r, in the same space.
    """
    index = [torch.as_tensor(a, dtype=torch.int64) for a in (parents, children, unrelated)]
    entailed = root_angles(vectors, index[0], index[1], root).double().numpy()
    other = root_angles(vectors, index[0], index[2], root).double().numpy()
    if not len(entailed):
        return EntailmentAngles(root_name, 0, math.nan, math.nan, math.nan)
    smaller = mannwhitneyu(other, entailed).statistic / (len(other) * len(entailed))
    return EntailmentAngles(
        root_name, len(entailed), float(entailed.mean()), float(other.mean()), float(smaller)
    )


def kendall_tau(radii: np.ndarray, depths: np.ndarray) -> tuple[float, float]:
    """Kendall tau-b (ties allowed, as depths have many) of radius vs tree depth, and p-value.

    +1 when every deeper item lies further from the origin, -1 for the reverse.
    """
    result = kendalltau(radii, depths)
    return float(result.statistic), float(result.pvalue)


@dataclass(frozen=True)
class DepthStats:
    """The crops at one label-tree depth: how many and their mean radius."""

    depth: int
    items: int
    mean_radius: float


@dataclass(frozen=True)
class RadialProbe:
    """Kendall tau of radius vs depth (None when undefined), its p-value, and per-depth stats."""

    kendall_tau: float | None
    p_value: float
    per_depth: list[DepthStats]


def radial_probe(embeddings: Tensor, depths: np.ndarray, curv: float | None = None) -> RadialProbe:
    """Radius-depth Kendall tau and per-depth mean radius.

    Args:
        embeddings: (N, D) crop embeddings; depths: (N,) tree depth of each crop's label.
        curv: Lorentz curvature, or None for Euclidean vectors.

    Returns:
        The probe, with one DepthStats per depth present (ascending).
    """
    depths = np.asarray(depths)
    radii = radius(embeddings, curv).double().cpu().numpy()
    tau, p_value = kendall_tau(radii, depths)
    per_depth = [
        DepthStats(int(d), int((depths == d).sum()), float(radii[depths == d].mean()))
        for d in np.unique(depths)
    ]
    return RadialProbe(tau if not math.isnan(tau) else None, p_value, per_depth)
