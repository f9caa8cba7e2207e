"""Tests for training.eval.radial: radius, exterior angles from a root, Kendall tau vs depth."""

import math

import numpy as np
import pytest
import torch

from training.eval.radial import angles_from_root, kendall_tau, radial_probe, radius
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


@pytest.mark.parametrize("curv", [1.0, None])
def test_angles_from_root_small_outward_large_inward(curv):
    root = torch.tensor([1.0, 0.0], dtype=torch.float64)
    points = torch.tensor([[3.0, 0.0], [1.0, 2.0], [0.2, 0.0]], dtype=torch.float64)
    outward, sideways, inward = angles_from_root(points, root, curv).tolist()
    assert outward < 0.01 and 0.5 < sideways < math.pi - 0.5 and inward > math.pi - 0.01


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
