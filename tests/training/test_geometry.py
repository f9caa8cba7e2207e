"""Tests for training.geometry: the DESIGN "Training and evaluation" geometry rules.

Angles are checked against float64 numpy references built from ambient hyperboloid coordinates.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from training.geometry import (
    MAX_EXP_RADIUS,
    UNIT_BOUND,
    euclidean_exterior_angle,
    exp_map0,
    exterior_angle,
    half_aperture,
    half_chord_distance,
    lorentz_angle_key_,
    lorentz_distance,
    lorentz_gallery_terms,
    lorentz_inner,
    lorentz_query_terms,
    pairwise_euclidean_exterior_angle,
    pairwise_exterior_angle,
    pairwise_lorentz_inner,
)

CURVATURES = [0.1, 1.0, 2.5]
# acos(UNIT_BOUND): the closest the clamped angles get to 0 and pi.
ANGLE_FLOOR = math.acos(UNIT_BOUND)


def _ambient(space: np.ndarray, curv: float) -> np.ndarray:
    """(B, 1 + D) float64 hyperboloid coordinates (time first) from space components."""
    time = np.sqrt(1.0 / curv + (space**2).sum(-1, keepdims=True))
    return np.concatenate([time, space], axis=-1)


def _minkowski(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[..., 1:] * b[..., 1:]).sum(-1) - a[..., 0] * b[..., 0]


def _tangent_reference(x: np.ndarray, y: np.ndarray, curv: float) -> np.ndarray:
    """Exterior angle as the angle between two tangent vectors at x, in float64.

    The tangent at x pointing to a point p is p's projection ``p + c<x,p>_L x``; the outward ray
    continues away from the origin o, so its tangent is minus the one pointing to o.
    """
    ax, ay = _ambient(x, curv), _ambient(y, curv)
    origin = np.zeros_like(ax)
    origin[:, 0] = 1.0 / math.sqrt(curv)
    to_y = ay + curv * _minkowski(ax, ay)[:, None] * ax
    outward = -(origin + curv * _minkowski(ax, origin)[:, None] * ax)
    norms = np.sqrt(_minkowski(to_y, to_y) * _minkowski(outward, outward))
    return np.arccos(np.clip(_minkowski(outward, to_y) / norms, -1.0, 1.0))


def _law_of_cosines_reference(x: np.ndarray, y: np.ndarray, curv: float) -> np.ndarray:
    """Exterior angle as pi minus the interior angle at x of triangle (o, x, y), in float64."""
    ax, ay = _ambient(x, curv), _ambient(y, curv)
    origin = np.zeros_like(ax)
    origin[:, 0] = 1.0 / math.sqrt(curv)

    def unit_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.arccosh(np.maximum(-curv * _minkowski(a, b), 1.0))

    ox, xy, oy = unit_distance(origin, ax), unit_distance(ax, ay), unit_distance(origin, ay)
    cos_interior = (np.cosh(ox) * np.cosh(xy) - np.cosh(oy)) / (np.sinh(ox) * np.sinh(xy))
    return np.pi - np.arccos(np.clip(cos_interior, -1.0, 1.0))


def _euclidean_reference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """pi minus the interior angle at x of the Euclidean triangle (o, x, y), law of cosines."""
    a, b, opposite = (
        np.linalg.norm(x, axis=1),
        np.linalg.norm(y - x, axis=1),
        np.linalg.norm(y, axis=1),
    )
    return np.pi - np.arccos(np.clip((a**2 + b**2 - opposite**2) / (2 * a * b), -1.0, 1.0))


def _random_points(rng: np.random.Generator, rows: int, dim: int = 6) -> np.ndarray:
    """Points at radii 0.2..3 in random directions, generic enough for no near-degenerate pair."""
    directions = rng.normal(size=(rows, dim))
    radii = rng.uniform(0.2, 3.0, size=(rows, 1))
    return directions / np.linalg.norm(directions, axis=1, keepdims=True) * radii


def _lorentz_angle(x, y, curv):
    return exterior_angle(torch.as_tensor(x), torch.as_tensor(y), curv)


@pytest.mark.parametrize("curv", CURVATURES)
@pytest.mark.parametrize("geometry", ["lorentz", "euclidean"])
def test_exterior_angle_is_zero_further_out_and_pi_towards_origin(geometry, curv):
    direction = torch.tensor([[0.6, 0.0, -0.8]]) * torch.tensor([[0.3], [1.0], [4.0]])
    further, between = direction * 1.7, direction * 0.4
    if geometry == "lorentz":

        def angle(a, b):
            return exterior_angle(a, b, curv)

        def pairwise(a, b):
            return pairwise_exterior_angle(a, b, curv)
    else:
        angle, pairwise = euclidean_exterior_angle, pairwise_euclidean_exterior_angle
    # The clamp keeps angles ANGLE_FLOOR (1.4e-3) away from 0 and pi.
    tolerance = 2 * ANGLE_FLOOR
    assert torch.allclose(angle(direction, further), torch.zeros(3), atol=tolerance)
    assert torch.allclose(angle(direction, between), torch.full((3,), math.pi), atol=tolerance)
    # Near 0 and pi an angle error is ~sqrt(2 x cosine error), so the matmul's ~1e-5 cosine
    # rounding at these radii shows as a few 1e-3 rad.
    pairwise_tolerance = 5e-3
    assert torch.allclose(
        pairwise(direction, further).diagonal(), torch.zeros(3), atol=pairwise_tolerance
    )
    assert torch.allclose(
        pairwise(direction, between).diagonal(), torch.full((3,), math.pi), atol=pairwise_tolerance
    )
    # Seen from the child the parent lies back towards the origin: ext(y, x) = pi.
    assert torch.allclose(angle(further, direction), torch.full((3,), math.pi), atol=tolerance)


@pytest.mark.parametrize("curv", CURVATURES)
def test_exterior_angle_matches_float64_hyperboloid_references(curv):
    rng = np.random.default_rng(7)
    x, y = _random_points(rng, 64), _random_points(rng, 64)
    tangent, law = _tangent_reference(x, y, curv), _law_of_cosines_reference(x, y, curv)
    np.testing.assert_allclose(tangent, law, atol=1e-9)
    # float64 input keeps float64 maths: the formula itself agrees to rounding.
    np.testing.assert_allclose(_lorentz_angle(x, y, curv).numpy(), tangent, atol=1e-9)
    float32 = exterior_angle(
        torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), curv
    )
    assert float32.dtype == torch.float32
    np.testing.assert_allclose(float32.numpy(), tangent, atol=2e-4)


def test_euclidean_exterior_angle_matches_float64_law_of_cosines():
    rng = np.random.default_rng(8)
    x, y = _random_points(rng, 64), _random_points(rng, 64)
    reference = _euclidean_reference(x, y)
    np.testing.assert_allclose(
        euclidean_exterior_angle(torch.tensor(x), torch.tensor(y)).numpy(), reference, atol=1e-9
    )
    float32 = euclidean_exterior_angle(torch.tensor(x).float(), torch.tensor(y).float())
    np.testing.assert_allclose(float32.numpy(), reference, atol=2e-4)


@pytest.mark.parametrize("curv", CURVATURES)
def test_pairwise_exterior_angle_agrees_with_elementwise(curv):
    rng = np.random.default_rng(9)
    x = torch.tensor(_random_points(rng, 5), dtype=torch.float32)
    y = torch.tensor(_random_points(rng, 7), dtype=torch.float32)
    rows, cols = torch.meshgrid(torch.arange(5), torch.arange(7), indexing="ij")
    expected = exterior_angle(x[rows.flatten()], y[cols.flatten()], curv).reshape(5, 7)
    assert torch.allclose(pairwise_exterior_angle(x, y, curv), expected, atol=1e-4)
    expected = euclidean_exterior_angle(x[rows.flatten()], y[cols.flatten()]).reshape(5, 7)
    assert torch.allclose(pairwise_euclidean_exterior_angle(x, y), expected, atol=1e-4)


@pytest.mark.parametrize("curv", CURVATURES)
def test_lorentz_inner_matches_ambient_minkowski_product(curv):
    rng = np.random.default_rng(10)
    x, y = _random_points(rng, 4), _random_points(rng, 6)
    reference = _minkowski(_ambient(x, curv)[:, None], _ambient(y, curv)[None, :])
    pairwise = pairwise_lorentz_inner(torch.tensor(x), torch.tensor(y), curv)
    np.testing.assert_allclose(pairwise.numpy(), reference, rtol=1e-12)
    elementwise = lorentz_inner(torch.tensor(x[:4]), torch.tensor(y[:4]), curv)
    np.testing.assert_allclose(elementwise.numpy(), reference.diagonal(), rtol=1e-12)
    # On the hyperboloid <x, x>_L = -1/c exactly, even far out where x_t^2 ~ |x|^2.
    far = torch.tensor([[1e3, -2e3, 5e2]])
    assert lorentz_inner(far, far, curv).item() == pytest.approx(-1.0 / curv, rel=1e-6)


@pytest.mark.parametrize("curv", CURVATURES)
def test_exp_map0_reaches_geodesic_distance_along_the_tangent(curv):
    v = torch.tensor([[0.3, -0.4, 1.2], [2.0, 0.0, 0.0], [1e-9, 0.0, 0.0]], dtype=torch.float64)
    x = exp_map0(v, curv).numpy()
    speed = np.linalg.norm(v.numpy(), axis=1)
    # Distance from the origin: cosh(sqrt(c) d) = sqrt(c) x_t.
    distance = np.arccosh(math.sqrt(curv) * _ambient(x, curv)[:, 0]) / math.sqrt(curv)
    np.testing.assert_allclose(distance[:2], speed[:2], rtol=1e-9)
    np.testing.assert_allclose(
        x / np.linalg.norm(x, axis=1, keepdims=True), v.numpy() / speed[:, None]
    )
    # Near the origin the map is the identity (to sinh(r)/r - 1 ~ r^2/6 at the 1e-4 radius floor).
    np.testing.assert_allclose(x[2], v[2].numpy(), rtol=1e-8)


def test_exp_map0_caps_the_radius_and_keeps_gradients_finite():
    v = torch.tensor([[1e4, 0.0], [0.0, 0.0]], requires_grad=True)
    x = exp_map0(v, 1.0)
    assert torch.isfinite(x).all()
    assert x[0, 0].item() == pytest.approx(math.sinh(MAX_EXP_RADIUS), rel=1e-5)
    assert torch.equal(x[1], torch.zeros(2))
    x.sum().backward()
    assert torch.isfinite(v.grad).all()
    assert torch.equal(v.grad[1], torch.ones(2))


@pytest.mark.parametrize("curv", CURVATURES)
def test_half_aperture_is_meru_arcsin_clamped_inside_min_radius(curv):
    x = torch.tensor([[3.0, 4.0], [0.0, 10.0], [0.0, 0.0], [1e-3, 0.0]], requires_grad=True)
    aperture = half_aperture(x, curv, min_radius=0.1)
    expected = [math.asin(0.2 / (5 * math.sqrt(curv))), math.asin(0.2 / (10 * math.sqrt(curv)))]
    assert aperture[:2].tolist() == pytest.approx(expected, rel=1e-6)
    # Apexes within 2K of the origin get the widest cone, just under pi/2 (asin of the float32
    # rounding of UNIT_BOUND).
    widest = math.asin(np.float32(UNIT_BOUND))
    assert aperture[2:].tolist() == pytest.approx([widest] * 2, rel=1e-6)
    aperture.sum().backward()
    assert torch.isfinite(x.grad).all()


def _hyperboloid_points(n: int, seed: int, curv: float = 1.3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return exp_map0(torch.randn(n, 6, generator=generator, dtype=torch.float64), curv)


def test_lorentz_distance_matches_acosh_of_inner_product():
    x, y = _hyperboloid_points(50, 6), _hyperboloid_points(50, 7)
    curv = 1.3
    inner = pairwise_lorentz_inner(x, y, curv).diagonal()
    want = torch.acosh(-curv * inner) / math.sqrt(curv)
    torch.testing.assert_close(lorentz_distance(x, y, curv), want, rtol=1e-10, atol=1e-10)


def test_lorentz_distance_is_exact_near_zero():
    """acosh(-c<x,y>_L) would round a float32 distance of 1e-4 to 0; the chord form keeps it."""
    x = exp_map0(torch.tensor([[0.3, 0.0]]), 1.0)
    y = exp_map0(torch.tensor([[0.3 + 1e-4, 0.0]]), 1.0)
    assert lorentz_distance(x, y, 1.0).item() == pytest.approx(1e-4, rel=1e-2)
    assert lorentz_distance(x, x, 1.0).item() == 0.0


def test_block_forms_give_q_distances_and_angle_ranking():
    """One matmul of the query and gallery terms is q = -c<x,y>_L - 1; the distance from q and
    the angle key agree with the row-wise functions (the key decreases with the angle)."""
    curv = 1.3
    x, y = _hyperboloid_points(5, 8), _hyperboloid_points(7, 9)
    rows, a, time = lorentz_query_terms(x, curv)
    columns, b = lorentz_gallery_terms(y, curv)
    q = rows @ columns.T
    torch.testing.assert_close(q, -curv * pairwise_lorentz_inner(x, y, curv) - 1.0)
    pairs_x, pairs_y = x.repeat_interleave(7, 0), y.repeat(5, 1)
    distance = lorentz_distance(pairs_x, pairs_y, curv).view(5, 7)
    torch.testing.assert_close(half_chord_distance(q, curv), distance)
    key = q.clone()
    lorentz_angle_key_(key, torch.empty_like(key), a, time, b)
    angle = pairwise_exterior_angle(x, y, curv)
    for row in range(5):
        assert torch.equal(key[row].argsort(), angle[row].argsort(descending=True))


def test_pairwise_angles_ignore_autocast():
    rng = np.random.default_rng(11)
    x = torch.tensor(_random_points(rng, 8), dtype=torch.float32)
    plain = pairwise_exterior_angle(x, x, 1.0), pairwise_euclidean_exterior_angle(x, x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        autocast = pairwise_exterior_angle(x, x, 1.0), pairwise_euclidean_exterior_angle(x, x)
    for expected, actual in zip(plain, autocast, strict=True):
        assert actual.dtype == torch.float32
        assert torch.allclose(actual, expected, atol=1e-6)


def test_bf16_inputs_are_computed_in_float32():
    rng = np.random.default_rng(12)
    x = torch.tensor(_random_points(rng, 16)).to(torch.bfloat16)
    y = torch.tensor(_random_points(rng, 16)).to(torch.bfloat16)
    angle = exterior_angle(x, y, 1.0)
    assert angle.dtype == torch.float32
    # Same (bf16-rounded) points in float64: only float32 rounding separates them.
    reference = _tangent_reference(x.double().numpy(), y.double().numpy(), 1.0)
    np.testing.assert_allclose(angle.numpy(), reference, atol=2e-4)


SCALES = [0.0, 1e-7, 1e-3, 1.0, 30.0, 1e3]


@st.composite
def point_pairs(draw) -> tuple[np.ndarray, np.ndarray]:
    """(B, 4) pairs of points mixing generic, identical, near-origin, far and same-ray cases."""
    rows = draw(st.integers(1, 4))
    unit = st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4)
    xs, ys = [], []
    for _ in range(rows):
        x = np.array(draw(unit)) * draw(st.sampled_from(SCALES))
        relation = draw(st.sampled_from(["independent", "identical", "scaled", "nudged"]))
        if relation == "independent":
            y = np.array(draw(unit)) * draw(st.sampled_from(SCALES))
        elif relation == "identical":
            y = x.copy()
        elif relation == "scaled":
            y = x * draw(st.sampled_from([0.5, 2.0, 1.0 + 1e-6, -1.0]))
        else:
            y = x + 1e-6 * np.array(draw(unit))
        xs.append(x)
        ys.append(y)
    return np.stack(xs), np.stack(ys)


def _leaf(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(array, dtype=dtype, requires_grad=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@settings(max_examples=80, deadline=None)
@given(pair=point_pairs(), curv=st.sampled_from(CURVATURES))
def test_lorentz_angles_stay_in_range_with_finite_gradients(dtype, pair, curv):
    for function in (exterior_angle, pairwise_exterior_angle):
        x, y = _leaf(pair[0], dtype), _leaf(pair[1], dtype)
        curvature = torch.tensor(curv, requires_grad=True)
        angle = function(x, y, curvature)
        assert angle.dtype == torch.float32
        assert torch.isfinite(angle).all()
        assert ((angle >= 0) & (angle <= math.pi)).all()
        angle.sum().backward()
        for leaf in (x, y, curvature):
            assert torch.isfinite(leaf.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@settings(max_examples=80, deadline=None)
@given(pair=point_pairs())
def test_euclidean_angles_stay_in_range_with_finite_gradients(dtype, pair):
    for function in (euclidean_exterior_angle, pairwise_euclidean_exterior_angle):
        x, y = _leaf(pair[0], dtype), _leaf(pair[1], dtype)
        angle = function(x, y)
        assert angle.dtype == torch.float32
        assert torch.isfinite(angle).all()
        assert ((angle >= 0) & (angle <= math.pi)).all()
        angle.sum().backward()
        assert torch.isfinite(x.grad).all()
        assert torch.isfinite(y.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@settings(max_examples=60, deadline=None)
@given(pair=point_pairs(), curv=st.sampled_from(CURVATURES))
def test_exp_map_inner_and_aperture_have_finite_gradients(dtype, pair, curv):
    v = _leaf(pair[0], dtype)
    curvature = torch.tensor(curv, requires_grad=True)
    x = exp_map0(v, curvature)
    aperture = half_aperture(x, curvature)
    assert ((aperture > 0) & (aperture < math.pi / 2)).all()
    inner = lorentz_inner(x, x, curvature)
    total = aperture.sum() + inner.sum() + pairwise_lorentz_inner(x, x, curvature).sum()
    assert torch.isfinite(total)
    total.backward()
    assert torch.isfinite(v.grad).all()
    assert torch.isfinite(curvature.grad)
