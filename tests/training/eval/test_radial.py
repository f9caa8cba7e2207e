"""Tests for training.eval.radial: radius, Radial Embeddings' entailment angle from a root over
entailment pairs, and Kendall tau vs depth."""

import math

import numpy as np
import pytest
import torch

from training.eval.radial import (
    entailment_angles,
    kendall_tau,
    radial_probe,
    radius,
    root_angles,
    tangent_vectors,
)
from training.geometry import exp_map0

# Tau-b of 6 distinct radii against depths (1, 1, 2, 2, 3, 3): the 12 pairs of different
# depth are all concordant, 3 pairs tie in depth: 12 / sqrt(15 * (15 - 3)).
TAU_MONOTONE = 12 / math.sqrt(15 * 12)


def test_kendall_tau_on_constructed_radius_ordering():
    """Issue 5 "Tests": tau on a constructed radius ordering, ties in depth included."""
    depths = np.array([1, 1, 2, 2, 3, 3])
    radii = np.array([0.1, 0.2, 0.5, 0.6, 1.0, 1.1])
    assert kendall_tau(radii, depths)[0] == pytest.approx(TAU_MONOTONE)
    assert kendall_tau(-radii, depths)[0] == pytest.approx(-TAU_MONOTONE)
    # Swapping the middle pair across depths: 11 concordant, 1 discordant.
    swapped = np.array([0.1, 0.2, 0.5, 1.05, 0.9, 1.1])
    assert kendall_tau(swapped, depths)[0] == pytest.approx(10 / math.sqrt(180))


def test_lorentz_radius_is_the_exp_map_length():
    """exp_map0 puts a tangent vector v at geodesic distance |v| from the origin."""
    tangent = torch.tensor([[0.5, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    got = radius(exp_map0(tangent, 0.7), 0.7)
    torch.testing.assert_close(got, tangent.norm(dim=-1))
    assert radius(tangent).tolist() == pytest.approx(tangent.norm(dim=-1).tolist())


def test_tangent_vectors_undo_the_exp_map():
    tangent = torch.tensor([[0.5, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(tangent_vectors(exp_map0(tangent, 0.7), 0.7), tangent)
    assert tangent_vectors(tangent) is tangent  # Euclidean vectors are used as they are


def test_root_angle_is_the_exterior_angle_with_the_root_in_the_origins_place():
    """Root r = (1, 1). u = (2, 1): the ray from r through u points along +x. v = (3, 1) lies
    beyond u on it (angle 0); w = (2, 2) is straight above u (angle pi/2 between u - r and
    w - u); (1.5, 1) lies between r and u (angle pi)."""
    vectors = torch.tensor([[2.0, 1.0], [3.0, 1.0], [2.0, 2.0], [1.5, 1.0]], dtype=torch.float64)
    root = torch.tensor([1.0, 1.0], dtype=torch.float64)
    angles = root_angles(vectors, torch.tensor([0, 0, 0]), torch.tensor([1, 2, 3]), root)
    assert angles.tolist() == pytest.approx([0.0, math.pi / 2, math.pi], abs=2e-3)
    # With the root at the origin instead, w = (2, 2) is no longer at a right angle.
    at_origin = root_angles(vectors, torch.tensor([0]), torch.tensor([2]), torch.zeros(2))
    assert at_origin.item() == pytest.approx(math.atan2(1, 0) - math.atan2(1, 2), abs=1e-6)


def test_entailment_angles_auc_counts_entailed_pairs_with_smaller_angles():
    # u = (2, 0) from the origin; entailed v further out on its ray, unrelated sideways.
    vectors = torch.tensor(
        [[2.0, 0.0], [3.0, 0.1], [4.0, -0.2], [2.0, 1.5], [1.0, 2.0]], dtype=torch.float64
    )
    probe = entailment_angles(
        vectors, np.array([0, 0]), np.array([1, 2]), np.array([3, 4]), torch.zeros(2), "origin"
    )
    assert probe.root == "origin" and probe.pairs == 2 and probe.auc == 1.0
    assert probe.entailed_mean < 0.2 < probe.unrelated_mean
    swapped = entailment_angles(
        vectors, np.array([0, 0]), np.array([3, 4]), np.array([1, 2]), torch.zeros(2), "origin"
    )
    assert swapped.auc == 0.0


def test_radial_probe_on_depth_ordered_embedding():
    generator = torch.Generator().manual_seed(0)
    depths = np.repeat([1, 2, 3], 20)
    directions = torch.nn.functional.normalize(torch.randn(60, 8, generator=generator), dim=-1)
    # Distinct radii depth + 0.01 i, i < 20: every depth's radii below the next depth's.
    lengths = depths + 0.01 * np.tile(np.arange(20), 3)
    tangent = directions * torch.as_tensor(lengths, dtype=torch.float32)[:, None]
    probe = radial_probe(exp_map0(tangent, 1.0), depths, curv=1.0)
    # All 1200 pairs of different depth are concordant; 570 of 1770 pairs tie in depth.
    assert probe.kendall_tau == pytest.approx(1200 / math.sqrt(1770 * 1200), rel=1e-6)
    mean_radii = [row.mean_radius for row in probe.per_depth]
    assert mean_radii == pytest.approx([1.095, 2.095, 3.095], rel=1e-4)
