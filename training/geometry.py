"""Lorentz-model and Euclidean geometry for entailment training and retrieval: exp map, inner
products, distances, angles, and the matmul block forms that score a query chunk at once.

Points are stored by their space components ``x_s`` (B, D); the time component is derived as
``x_t = sqrt(1/c + |x_s|^2)``, so every point lies on the hyperboloid of curvature ``-c``.

Every function computes in float32 (float64 inputs stay float64; bf16/fp16 inputs are cast up) and
returns that dtype. Internally the Lorentz maths runs in unit-curvature coordinates
``X = sqrt(c) x_s`` (``X_t = sqrt(1 + |X|^2)``, ``K = c <x, y>_L``), where the angle formulas no
longer depend on ``c`` and every clamp below has a fixed, curvature-free meaning.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# acos/asin have infinite slope at +-1. Float32 spacing just below 1.0 is 6e-8, so 1 - 1e-6 is a
# real bound (1 - 1e-8 rounds to 1.0); it caps the slope near 700 and keeps angles within
# [1.4e-3, pi - 1.4e-3].
UNIT_BOUND = 1.0 - 1e-6
# Below |X| = 1e-4 (unit-curvature units) the ray from the origin through x is lost in float32
# rounding of the numerator, so the direction there is treated as undefined.
MIN_NORM_SQ = 1e-8
# sinh^2 of the unit-curvature distance between x and y. In the pairwise (matmul) form it carries
# rounding of ~1e-7 (|X|^2 + |Y|^2), so below 1e-6 (distance ~1e-3) the direction is noise.
MIN_SINH_SQ = 1e-6
# Euclidean space has no natural unit, so the floor on |y - x|^2 is relative to |x|^2 + |y|^2, the
# scale of the rounding error of its matmul form.
MIN_RELATIVE_GAP_SQ = 1e-6
# exp_map0 caps sqrt(c)|v| here so sqrt(c)|x_s| <= 2^15: sinh stays finite (float32 sinh overflows
# past 89) and K^2 ~ (c |x_s| |y_s|)^2 <= 1e18 stays far from float32 overflow.
MAX_EXP_RADIUS = math.asinh(2.0**15)


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 stays float64; bf16, fp16 and fp32 are all computed in float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _sqrt_curv(curv: float | Tensor, like: Tensor) -> Tensor | float:
    """sqrt(c) as a Python float or as a 0-dim tensor on ``like``'s device and dtype."""
    if isinstance(curv, Tensor):
        return curv.to(device=like.device, dtype=like.dtype).sqrt()
    if not curv > 0:
        raise ValueError(f"curvature must be positive, got {curv}")
    return math.sqrt(curv)


def _unit_coordinates(x: Tensor, curv: float | Tensor, dtype: torch.dtype) -> Tensor:
    """Space components rescaled to the unit hyperboloid: ``X = sqrt(c) x_s``, same shape."""
    x = x.to(dtype)
    return _sqrt_curv(curv, x) * x


def _unit_time(x_sq: Tensor) -> Tensor:
    """Time component on the unit hyperboloid from ``|X|^2``: ``sqrt(1 + |X|^2)``."""
    return torch.sqrt(1.0 + x_sq)


def _half_lorentz_chord_sq(
    x: Tensor, y: Tensor, x_time: Tensor, y_time: Tensor
) -> tuple[Tensor, Tensor]:
    """``q = -K - 1 = |X - Y|_L^2 / 2`` and ``X_t - Y_t``, both without subtracting large terms.

    ``K = <X, Y>_L`` computed directly loses ~1e-7 X_t Y_t to cancellation; here the difference
    of the time components is ``<X - Y, X + Y> / (X_t + Y_t)`` and ``q`` is built from differences.

    Args:
        x, y: (B, D) unit-curvature space components.
        x_time, y_time: (B,) their time components.

    Returns:
        q (B,), >= 0, and the time gap ``X_t - Y_t`` (B,).
    """
    gap = x - y
    time_gap = (gap * (x + y)).sum(-1) / (x_time + y_time)
    # The reverse Cauchy-Schwarz inequality makes q >= 0; rounding can dip below, and a negative q
    # would make sinh^2 = q (q + 2) negative.
    q = torch.clamp((gap.square().sum(-1) - time_gap.square()) / 2, min=0.0)
    return q, time_gap


def _lorentz_angle(numerator: Tensor, x_sq: Tensor, sinh_sq: Tensor) -> Tensor:
    """``arccos(numerator / (|X| sqrt(sinh_sq)))`` with the clamps every Lorentz angle shares."""
    # x at the origin has no outward ray: the 0/0 becomes 0, an angle of pi/2.
    x_norm = torch.sqrt(torch.clamp(x_sq, min=MIN_NORM_SQ))
    # y on top of x has no direction from x: 0/0 again, and sqrt's slope is infinite at 0.
    sinh = torch.sqrt(torch.clamp(sinh_sq, min=MIN_SINH_SQ))
    # acos' slope is infinite at +-1 (and rounding can push the ratio past them).
    cosine = torch.clamp(numerator / (x_norm * sinh), min=-UNIT_BOUND, max=UNIT_BOUND)
    return torch.acos(cosine)


def exp_map0(v: Tensor, curv: float | Tensor) -> Tensor:
    """Exponential map at the hyperboloid origin: tangent vectors to points on the hyperboloid.

    ``x_s = sinh(sqrt(c) |v|) v / (sqrt(c) |v|)``; the point lies at geodesic distance ``|v|``
    from the origin along the direction of ``v``.

    Args:
        v: (B, D) tangent vectors at the origin (e.g. encoder projections).
        curv: positive float or 0-dim tensor, the curvature magnitude ``c``.

    Returns:
        (B, D) space components, float32 (float64 for float64 input).
    """
    v = v.to(compute_dtype(v))
    radius_sq = v.square().sum(-1, keepdim=True) * _sqrt_curv(curv, v) ** 2
    # sinh(r)/r -> 1 as r -> 0: flooring r keeps the division finite, and sinh(1e-4)/1e-4 == 1.0
    # in float32, so the value is exact; the floor also blocks sqrt's infinite slope at 0.
    radius = torch.sqrt(torch.clamp(radius_sq, min=MIN_NORM_SQ))
    # Past MAX_EXP_RADIUS sinh would overflow float32 downstream (see MAX_EXP_RADIUS).
    return torch.sinh(torch.clamp(radius, max=MAX_EXP_RADIUS)) / radius * v


def lorentz_inner(x: Tensor, y: Tensor, curv: float | Tensor) -> Tensor:
    """Row-wise Lorentzian inner product ``<x, y>_L = <x_s, y_s> - x_t y_t``.

    Computed as ``-(1 + |X - Y|_L^2 / 2) / c``, which is exact on the hyperboloid and keeps full
    precision for nearby points (``<x, x>_L = -1/c`` exactly).

    Args:
        x, y: (B, D) space components.
        curv: positive float or 0-dim tensor ``c``.

    Returns:
        (B,) inner products, <= -1/c.
    """
    dtype = compute_dtype(x, y)
    x, y = _unit_coordinates(x, curv, dtype), _unit_coordinates(y, curv, dtype)
    x_time, y_time = _unit_time(x.square().sum(-1)), _unit_time(y.square().sum(-1))
    q, _ = _half_lorentz_chord_sq(x, y, x_time, y_time)
    return -(1.0 + q) / _sqrt_curv(curv, x) ** 2


def _pairwise_half_lorentz_chord_sq(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``q = -<X, Y>_L - 1`` and ``X_t - Y_t`` for all pairs, from ONE matmul.

    ``<X, Y>_L = <X, Y> - X_t Y_t`` straight from a matmul would carry ~1e-7 X_t Y_t >= 1e-7 of
    rounding; ``q = (|X|^2 + |Y|^2 - 2<X, Y> - (X_t - Y_t)^2) / 2`` carries ~1e-7 (|X|^2 + |Y|^2),
    orders of magnitude less near the origin where training starts.

    Args:
        x: (B1, D), y: (B2, D) unit-curvature space components.

    Returns:
        q (B1, B2) >= 0, time gap ``X_t - Y_t`` (B1, B2) and x's time component (B1, 1).
    """
    x_sq, y_sq = x.square().sum(-1)[:, None], y.square().sum(-1)[None, :]
    x_time, y_time = _unit_time(x_sq), _unit_time(y_sq)
    # Autocast would run this matmul in bf16/fp16 on GPU, losing <x, y> to 3 digits.
    with torch.autocast(device_type=x.device.type, enabled=False):
        inner = x @ y.T
    time_gap = (x_sq - y_sq) / (x_time + y_time)
    # The reverse Cauchy-Schwarz inequality makes q >= 0; the matmul's rounding can dip below,
    # and a negative q would make sinh^2 = q (q + 2) negative.
    q = torch.clamp((x_sq + y_sq - 2.0 * inner - time_gap.square()) / 2, min=0.0)
    return q, time_gap, x_time


def pairwise_lorentz_inner(x: Tensor, y: Tensor, curv: float | Tensor) -> Tensor:
    """Lorentzian inner product of every row of ``x`` with every row of ``y``.

    Args:
        x: (B1, D) space components.
        y: (B2, D) space components.
        curv: positive float or 0-dim tensor ``c``.

    Returns:
        (B1, B2) inner products ``<x_i, y_j>_L``, computed as ``-(1 + |x - y|_L^2 c / 2) / c``
        from one matmul (absolute rounding ~1e-7 (|x_s|^2 + |y_s|^2), not ~1e-7 x_t y_t).
    """
    dtype = compute_dtype(x, y)
    x, y = _unit_coordinates(x, curv, dtype), _unit_coordinates(y, curv, dtype)
    q, _, _ = _pairwise_half_lorentz_chord_sq(x, y)
    return -(1.0 + q) / _sqrt_curv(curv, x) ** 2


def exterior_angle(x: Tensor, y: Tensor, curv: float | Tensor) -> Tensor:
    """Row-wise exterior angle at ``x`` of the hyperbolic triangle (origin, x, y).

    ``ext(x, y) = arccos((y_t + c<x,y>_L x_t) / (|x_s| sqrt((c<x,y>_L)^2 - 1)))`` is the angle
    at ``x`` between the geodesic continuing outward from the origin through ``x`` and the
    geodesic from ``x`` to ``y``: 0 when ``y`` lies further out on the ray through ``x``, pi when
    it lies between the origin and ``x``. Evaluated via the cancellation-free
    ``q = -c<x,y>_L - 1`` (numerator ``-(X_t - Y_t) - q X_t``, ``(c<x,y>_L)^2 - 1 = q (q + 2)``).

    Args:
        x: (B, D) space components of the cone apexes.
        y: (B, D) space components of the other points.
        curv: positive float or 0-dim tensor ``c``.

    Returns:
        (B,) angles in [1.4e-3, pi - 1.4e-3] (see UNIT_BOUND); pi/2 where x is at the origin or
        y coincides with x, where the angle is undefined.
    """
    dtype = compute_dtype(x, y)
    x, y = _unit_coordinates(x, curv, dtype), _unit_coordinates(y, curv, dtype)
    x_sq = x.square().sum(-1)
    x_time = _unit_time(x_sq)
    q, time_gap = _half_lorentz_chord_sq(x, y, x_time, _unit_time(y.square().sum(-1)))
    return _lorentz_angle(-time_gap - q * x_time, x_sq, q * (q + 2.0))


def pairwise_exterior_angle(x: Tensor, y: Tensor, curv: float | Tensor) -> Tensor:
    """Exterior angle ``ext(x_i, y_j)`` (see exterior_angle) for every pair of rows.

    One matmul plus per-vector terms; no (B1, B2, D) tensor is built. Peak memory is a few
    (B1, B2) float32 buffers, so score large galleries in chunks of ``y``. Keep TF32 matmuls off
    (``torch.backends.cuda.matmul.allow_tf32``): they would cost ~3 digits of ``c<x,y>_L``.

    Args:
        x: (B1, D) space components of the cone apexes.
        y: (B2, D) space components of the other points.
        curv: positive float or 0-dim tensor ``c``.

    Returns:
        (B1, B2) angles in [1.4e-3, pi - 1.4e-3]. The matmul's rounding (~1e-7 (|X|^2 + |Y|^2) in
        ``q``) makes them less precise than exterior_angle's for nearby far-out pairs, where the
        angle is ill-conditioned anyway.
    """
    dtype = compute_dtype(x, y)
    x, y = _unit_coordinates(x, curv, dtype), _unit_coordinates(y, curv, dtype)
    q, time_gap, x_time = _pairwise_half_lorentz_chord_sq(x, y)
    return _lorentz_angle(-time_gap - q * x_time, x.square().sum(-1)[:, None], q * (q + 2.0))


def lorentz_unit_terms(x: Tensor, curv: float) -> tuple[Tensor, Tensor, Tensor]:
    """Unit-curvature coordinates ``X = sqrt(c) x`` (B, D), ``X_t - 1`` (B,) and ``X_t`` (B,).

    ``X_t - 1 = |X|^2 / (X_t + 1)`` keeps full relative precision near the origin, where
    ``sqrt(1 + |X|^2) - 1`` would round to 0.
    """
    unit = math.sqrt(curv) * x
    norm_sq = unit.square().sum(-1)
    time = torch.sqrt(1.0 + norm_sq)
    return unit, norm_sq / (time + 1.0), time


def lorentz_distance(x: Tensor, y: Tensor, curv: float) -> Tensor:
    """Row-wise geodesic distance on the hyperboloid of curvature ``-c``.

    ``d = 2 asinh(|X - Y|_L / 2) / sqrt(c)`` in unit coordinates, with the Minkowski chord
    ``|X - Y|_L^2 = |X - Y|^2 - (X_t - Y_t)^2`` and ``X_t - Y_t = <X - Y, X + Y> / (X_t + Y_t)``:
    built from differences, it keeps full relative precision for nearby points, where
    ``acosh(-c<x,y>_L)`` rounds small distances to 0.

    Args:
        x, y: (B, D) space components.
        curv: the curvature magnitude ``c`` > 0.

    Returns:
        (B,) distances >= 0, float32 (float64 for float64 input).
    """
    dtype = compute_dtype(x, y)
    x_unit, _, x_time = lorentz_unit_terms(x.to(dtype), curv)
    y_unit, _, y_time = lorentz_unit_terms(y.to(dtype), curv)
    gap = x_unit - y_unit
    time_gap = (gap * (x_unit + y_unit)).sum(-1) / (x_time + y_time)
    # The chord is spacelike (>= 0); rounding can dip it below 0 for nearly equal points.
    chord_sq = torch.clamp(gap.square().sum(-1) - time_gap.square(), min=0.0)
    return 2.0 * torch.asinh(torch.sqrt(chord_sq) / 2.0) / math.sqrt(curv)


def half_chord_distance(q: Tensor, curv: float) -> Tensor:
    """Geodesic distance ``2 asinh(sqrt(q / 2)) / sqrt(c)`` from ``q = -c<x,y>_L - 1 >= 0``.

    ``q`` (any shape) is half the squared Minkowski chord in unit coordinates (see
    lorentz_distance).
    """
    return 2.0 * torch.asinh(torch.sqrt(q / 2.0)) / math.sqrt(curv)


# Block forms: a (Bq, Bg) block of q = -c<x,y>_L - 1 from ONE matmul of per-vector terms,
# ``[X, a, a, 1] . [-Y, b, 1, b] = -<X, Y> + (a + 1)(b + 1) - 1`` with a = X_t - 1, b = Y_t - 1.


def lorentz_query_terms(x: Tensor, curv: float) -> tuple[Tensor, Tensor, Tensor]:
    """The query side of the q block: ``[X, a, a, 1]`` (B, D + 3), ``a`` (B,) and ``X_t`` (B,)."""
    unit, a, time = lorentz_unit_terms(x, curv)
    return torch.cat([unit, a[:, None], a[:, None], torch.ones_like(a)[:, None]], 1), a, time


def lorentz_gallery_terms(y: Tensor, curv: float) -> tuple[Tensor, Tensor]:
    """The gallery side of the q block: ``[-Y, b, 1, b]`` (B, D + 3) and ``b`` (B,)."""
    unit, b, _ = lorentz_unit_terms(y, curv)
    return torch.cat([-unit, b[:, None], torch.ones_like(b)[:, None], b[:, None]], 1), b


def lorentz_angle_key_(block: Tensor, scratch: Tensor, a: Tensor, time: Tensor, b: Tensor) -> None:
    """Turn a q block (Bq, Bg) in place into a key ∝ cos ext(x, y) for ranking.

    Key = ``(b - a - X_t q) / sinh`` with ``sinh^2 = q (q + 2)``: the same algebra and clamps
    as pairwise_exterior_angle, which writes the numerator as ``-(X_t - Y_t) - q X_t`` with
    ``X_t - Y_t = a - b``. The row constant ``|X|`` and the acos (decreasing) are left out, so
    beta = pi - ext is maximised by the largest key and alpha = ext by the smallest.

    Args:
        block: (Bq, Bg) q values, overwritten with the keys.
        scratch: a free buffer of the block's shape.
        a, time: (Bq,) the query terms (lorentz_query_terms); b: (Bg,) the gallery's.
    """
    # q + q^2 / 2 = sinh^2 / 2; its floor is MIN_SINH_SQ (y on top of x).
    torch.addcmul(block, block, block, value=0.5, out=scratch)
    scratch.clamp_(min=MIN_SINH_SQ / 2).rsqrt_()
    torch.addcmul(b, block, -time[:, None], out=block)
    block.sub_(a[:, None]).mul_(scratch)


def half_aperture(x: Tensor, curv: float | Tensor, min_radius: float = 0.1) -> Tensor:
    """Half aperture of the entailment cone with apex ``x`` (MERU's Lorentz cone).

    ``aper(x) = arcsin(2 K / (sqrt(c) |x_s|))`` with ``K = min_radius``: the cone narrows as its
    apex moves away from the origin (general concepts near the origin get wide cones). Inside the
    radius ``sqrt(c) |x_s| <= 2K`` the formula exceeds arcsin's domain; those apexes are treated
    as lying on its boundary, i.e. aperture ~pi/2 (the cone is a half-space).

    Args:
        x: (B, D) space components of the cone apexes.
        curv: positive float or 0-dim tensor ``c``.
        min_radius: ``K``, radius of the neighbourhood of the origin where cones are undefined.

    Returns:
        (B,) half apertures in (0, pi/2 - 1.4e-3].
    """
    x = _unit_coordinates(x, curv, compute_dtype(x))
    # At the origin the ratio is 2K/0; flooring |X| keeps it (and its gradient) finite.
    x_norm = torch.sqrt(torch.clamp(x.square().sum(-1), min=MIN_NORM_SQ))
    # asin's slope is infinite at 1, and apexes inside the 2K radius would exceed its domain.
    return torch.asin(torch.clamp(2.0 * min_radius / x_norm, max=UNIT_BOUND))


def _euclidean_angle(dot_x_gap: Tensor, x_sq: Tensor, y_sq: Tensor, gap_sq: Tensor) -> Tensor:
    """``arccos(<x, y - x> / (|x| |y - x|))`` from broadcastable squared norms and dot product."""
    # x at the origin has no outward ray: the 0/0 becomes 0, an angle of pi/2.
    x_norm = torch.sqrt(torch.clamp(x_sq, min=MIN_NORM_SQ))
    # y on top of x has no direction from x; the matmul form of |y - x|^2 can even go negative.
    gap_floor = torch.clamp(MIN_RELATIVE_GAP_SQ * (x_sq + y_sq), min=MIN_NORM_SQ)
    gap_norm = torch.sqrt(torch.maximum(gap_sq, gap_floor))
    # acos' slope is infinite at +-1 (and rounding can push the ratio past them).
    cosine = torch.clamp(dot_x_gap / (x_norm * gap_norm), min=-UNIT_BOUND, max=UNIT_BOUND)
    return torch.acos(cosine)


def euclidean_exterior_angle(x: Tensor, y: Tensor) -> Tensor:
    """Row-wise Euclidean exterior angle ``ext(x, y) = arccos(<x, y - x> / (|x| |y - x|))``.

    The angle at ``x`` between the ray from the origin through ``x`` (continued past ``x``) and
    the segment from ``x`` to ``y``: 0 further out on the ray, pi between the origin and ``x``.

    Args:
        x: (B, D) cone apexes.
        y: (B, D) other points.

    Returns:
        (B,) angles in [1.4e-3, pi - 1.4e-3]; pi/2 where x is at the origin or y ~ x.
    """
    dtype = compute_dtype(x, y)
    x, y = x.to(dtype), y.to(dtype)
    gap = y - x
    return _euclidean_angle(
        (x * gap).sum(-1), x.square().sum(-1), y.square().sum(-1), gap.square().sum(-1)
    )


def pairwise_euclidean_exterior_angle(x: Tensor, y: Tensor) -> Tensor:
    """Euclidean exterior angle ``ext(x_i, y_j)`` for every pair of rows, from one matmul.

    Uses ``<x, y - x> = <x, y> - |x|^2`` and ``|y - x|^2 = |x|^2 + |y|^2 - 2<x, y>``.

    Args:
        x: (B1, D) cone apexes.
        y: (B2, D) other points.

    Returns:
        (B1, B2) angles in [1.4e-3, pi - 1.4e-3].
    """
    dtype = compute_dtype(x, y)
    x, y = x.to(dtype), y.to(dtype)
    x_sq, y_sq = x.square().sum(-1)[:, None], y.square().sum(-1)[None, :]
    # Autocast would run this matmul in bf16/fp16 on GPU, losing <x, y> to 3 digits.
    with torch.autocast(device_type=x.device.type, enabled=False):
        inner = x @ y.T
    return _euclidean_angle(inner - x_sq, x_sq, y_sq, x_sq + y_sq - 2.0 * inner)
