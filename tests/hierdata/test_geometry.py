"""Box geometry against shapely polygons, and pairs_within_groups against a double loop."""

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from hierdata import geometry

_TOLERANCE = 1e-9


@st.composite
def boxes(draw: st.DrawFn, n: int) -> np.ndarray:
    """(n, 4) valid normalised boxes (xmin, xmax, ymin, ymax), at least 1e-3 wide and tall.

    The minimum size keeps the ratios well conditioned for an absolute tolerance.
    """
    rows = []
    for _ in range(n):
        xmin = draw(st.floats(0.0, 0.999, allow_subnormal=False))
        xmax = draw(st.floats(xmin + 1e-3, 1.0))
        ymin = draw(st.floats(0.0, 0.999, allow_subnormal=False))
        ymax = draw(st.floats(ymin + 1e-3, 1.0))
        rows.append((xmin, xmax, ymin, ymax))
    return np.array(rows, dtype=np.float64).reshape(n, 4)


@st.composite
def box_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 12))
    return draw(boxes(n)), draw(boxes(n))


def _polygons(b: np.ndarray) -> np.ndarray:
    # shapely.box takes (minx, miny, maxx, maxy); ours are (xmin, xmax, ymin, ymax).
    return shapely.box(b[:, 0], b[:, 2], b[:, 1], b[:, 3])


@settings(max_examples=200, deadline=None)
@given(box_pairs())
def test_intersection_matches_shapely(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    expected = shapely.area(shapely.intersection(_polygons(a), _polygons(b)))
    np.testing.assert_allclose(geometry.intersection_areas(a, b), expected, rtol=0, atol=_TOLERANCE)


@settings(max_examples=200, deadline=None)
@given(box_pairs())
def test_containment_matches_shapely(pair: tuple[np.ndarray, np.ndarray]) -> None:
    child, parent = pair
    child_polygons = _polygons(child)
    inter = shapely.area(shapely.intersection(child_polygons, _polygons(parent)))
    expected = inter / shapely.area(child_polygons) if len(child) else np.zeros(0)
    np.testing.assert_allclose(
        geometry.containment(child, parent), expected, rtol=0, atol=_TOLERANCE
    )


@settings(max_examples=200, deadline=None)
@given(box_pairs())
def test_iou_matches_shapely(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    pa_, pb = _polygons(a), _polygons(b)
    inter = shapely.area(shapely.intersection(pa_, pb))
    union = shapely.area(shapely.union(pa_, pb))
    expected = inter / union if len(a) else np.zeros(0)
    np.testing.assert_allclose(geometry.iou(a, b), expected, rtol=0, atol=_TOLERANCE)
    # IoU is symmetric, containment is not.
    np.testing.assert_allclose(geometry.iou(b, a), geometry.iou(a, b), rtol=0, atol=1e-15)


def test_box_areas_are_width_times_height() -> None:
    areas = geometry.box_areas(
        np.array([0.0, 0.25]), np.array([0.5, 1.0]), np.array([0.0, 0.5]), np.array([1.0, 0.75])
    )
    np.testing.assert_array_equal(areas, [0.5, 0.1875])


def test_touching_and_disjoint_boxes_do_not_intersect() -> None:
    a = np.array([[0.0, 0.5, 0.0, 0.5], [0.0, 0.25, 0.0, 0.25]])
    b = np.array([[0.5, 1.0, 0.0, 0.5], [0.5, 1.0, 0.5, 1.0]])  # shares an edge; far away
    np.testing.assert_array_equal(geometry.intersection_areas(a, b), [0.0, 0.0])
    np.testing.assert_array_equal(geometry.containment(a, b), [0.0, 0.0])
    np.testing.assert_array_equal(geometry.iou(a, b), [0.0, 0.0])


def test_containment_of_nested_and_half_inside_boxes() -> None:
    parent = np.array([[0.0, 1.0, 0.0, 1.0], [0.0, 0.5, 0.0, 1.0]])
    child = np.array([[0.25, 0.5, 0.25, 0.5], [0.25, 0.75, 0.0, 0.5]])
    np.testing.assert_array_equal(geometry.containment(child, parent), [1.0, 0.5])
    # The parent is only partly inside the child: the measure is not symmetric.
    np.testing.assert_array_equal(geometry.containment(parent, child), [0.0625, 0.25])


def test_zero_area_box_gives_zero_not_nan() -> None:
    degenerate = np.array([[0.5, 0.5, 0.0, 1.0]])
    whole = np.array([[0.0, 1.0, 0.0, 1.0]])
    assert geometry.containment(degenerate, whole)[0] == 0.0
    assert geometry.iou(degenerate, degenerate)[0] == 0.0


def test_boxes_must_have_four_columns() -> None:
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        geometry.iou(np.zeros((3, 3)), np.zeros((3, 3)))


def _naive_pairs(sizes: list[int], ordered: bool) -> tuple[list[int], list[int]]:
    i_out, j_out, start = [], [], 0
    for size in sizes:
        for i in range(start, start + size):
            for j in range(start, start + size):
                if i != j and (ordered or i < j):
                    i_out.append(i)
                    j_out.append(j)
        start += size
    return i_out, j_out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=25), st.booleans())
def test_pairs_within_groups_matches_double_loop(sizes: list[int], ordered: bool) -> None:
    i, j = geometry.pairs_within_groups(np.array(sizes, dtype=np.int64), ordered=ordered)
    expected_i, expected_j = _naive_pairs(sizes, ordered)
    assert i.dtype == np.int64 and j.dtype == np.int64
    assert i.tolist() == expected_i
    assert j.tolist() == expected_j


def test_pairs_within_groups_counts() -> None:
    sizes = np.array([3, 1, 0, 2])
    i, j = geometry.pairs_within_groups(sizes)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [
        (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (4, 5), (5, 4),
    ]  # fmt: skip
    i, j = geometry.pairs_within_groups(sizes, ordered=False)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2), (4, 5)]


def test_pairs_within_groups_rejects_negative_sizes() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        geometry.pairs_within_groups(np.array([2, -1]))
