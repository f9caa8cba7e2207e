"""Tests for training.losses: the entailment loss in its two forms, the paper's eq. 8 per pair
("per_pair", the default) and SupCon L_out ("supcon_out").

References are hand-written numpy loops over the docstring formulas, independent of the torch code,
and one case written out term by term.
"""

import math

import numpy as np
import pytest
import torch

from training.geometry import exp_map0
from training.losses import (
    EntailmentLoss,
    bidirectional_infonce,
    multi_positive_infonce,
    per_pair_infonce,
)

# 2 parents (crops 0, 1) and 3 children (crops 2, 3, 4); child 3 has both parents.
PARENTS = [0, 0, 1, 1]
CHILDREN = [2, 3, 3, 4]
# angles[i, j] = ext(e_i, e_j); the diagonal is never used.
ANGLES = np.array(
    [
        [1.0, 2.0, 0.3, 0.5, 2.5],
        [1.9, 9.0, 2.2, 0.4, 0.1],
        [2.9, 1.0, 9.0, 1.2, 0.7],
        [2.7, 2.8, 0.9, 9.0, 1.6],
        [0.6, 3.0, 1.1, 2.0, 9.0],
    ]
)


def _per_pair_reference(
    angles: np.ndarray, mask: np.ndarray, temperature: float
) -> tuple[float, float]:
    """Both directions of eq. 8 by explicit loops, in float64: one term per entailment pair, the
    denominator that positive plus the crops with no entailment relation to the anchor."""
    n = len(angles)
    related = mask | mask.T

    def direction(scores: np.ndarray, positives: np.ndarray) -> float:
        terms = []
        for anchor in range(n):
            others = [k for k in range(n) if k != anchor and not related[anchor, k]]
            for p in range(n):
                if positives[anchor, p]:
                    logit = scores[anchor, p] / temperature
                    denominator = math.exp(logit) + sum(
                        math.exp(scores[anchor, k] / temperature) for k in others
                    )
                    terms.append(-(logit - math.log(denominator)))
        return float(np.mean(terms))

    return direction(np.pi - angles, mask), direction(angles, mask.T)


def _reference_loss(
    angles: np.ndarray, mask: np.ndarray, temperature: float
) -> tuple[float, float]:
    """Both directions of the SupCon L_out form by explicit loops, in float64."""
    n = len(angles)

    def direction(scores: np.ndarray, positives: np.ndarray) -> float:
        losses = []
        for anchor in range(n):
            positive = [k for k in range(n) if positives[anchor, k]]
            if not positive:
                continue
            logits = scores[anchor] / temperature
            log_norm = math.log(sum(math.exp(logits[k]) for k in range(n) if k != anchor))
            losses.append(-np.mean([logits[p] - log_norm for p in positive]))
        return float(np.mean(losses))

    return direction(np.pi - angles, mask), direction(angles, mask.T)


def _mask(n: int, parents, children) -> np.ndarray:
    mask = np.zeros((n, n), dtype=bool)
    mask[parents, children] = True
    return mask


def test_per_pair_form_written_out_for_a_chain_and_an_unrelated_crop():
    # Crop 0 entails 1 and 2, crop 1 entails 2 (a chain image > box > part); crop 3 is unrelated.
    # Every anchor's negatives are {3}: the anchor's own parents and children never are.
    angles = np.array(
        [
            [0.0, 0.4, 0.8, 1.5],
            [2.6, 0.0, 0.5, 1.1],
            [2.9, 2.2, 0.0, 1.9],
            [1.0, 1.7, 0.6, 0.0],
        ]
    )
    mask = _mask(4, [0, 0, 1], [1, 2, 2])
    temperature = 0.5

    def term(positive_score: float, negative_score: float) -> float:
        a, b = positive_score / temperature, negative_score / temperature
        return -math.log(math.exp(a) / (math.exp(a) + math.exp(b)))

    beta = np.pi - angles
    p2c_by_hand = (term(beta[0, 1], beta[0, 3]) + term(beta[0, 2], beta[0, 3])
                   + term(beta[1, 2], beta[1, 3])) / 3  # fmt: skip
    c2p_by_hand = (term(angles[1, 0], angles[1, 3]) + term(angles[2, 0], angles[2, 3])
                   + term(angles[2, 1], angles[2, 3])) / 3  # fmt: skip
    p2c, c2p = bidirectional_infonce(torch.tensor(angles), torch.tensor(mask), temperature)
    assert (p2c.item(), c2p.item()) == pytest.approx((p2c_by_hand, c2p_by_hand), abs=1e-12)
    # The SupCon L_out form differs: crop 1's parent 0 competes in its parent -> child softmax.
    old_p2c, _ = bidirectional_infonce(
        torch.tensor(angles), torch.tensor(mask), temperature, form="supcon_out"
    )
    assert abs(old_p2c.item() - p2c_by_hand) > 0.1


def test_per_pair_form_matches_hand_written_numpy():
    mask = _mask(5, PARENTS, CHILDREN)
    p2c, c2p = bidirectional_infonce(torch.tensor(ANGLES), torch.tensor(mask), 0.3)
    expected = _per_pair_reference(ANGLES, mask, 0.3)
    assert (p2c.item(), c2p.item()) == pytest.approx(expected, abs=1e-10)


def test_per_pair_infonce_term_without_negatives_is_zero_with_finite_gradients():
    logits = torch.tensor([[0.0, 2.0, 1.0], [0.5, 0.0, 3.0]], requires_grad=True)
    positives = torch.tensor([[False, True, False], [False, False, True]])
    negatives = torch.tensor([[False, False, True], [False, False, False]])  # row 1: none
    loss = per_pair_infonce(logits, positives, negatives)
    row0 = math.log1p(math.exp(1.0 - 2.0))
    assert loss.item() == pytest.approx(row0 / 2, abs=1e-7)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[1].abs().sum() == 0


def test_supcon_out_form_matches_hand_written_numpy():
    mask = _mask(5, PARENTS, CHILDREN)
    temperature = 0.3
    p2c, c2p = bidirectional_infonce(
        torch.tensor(ANGLES), torch.tensor(mask), temperature, form="supcon_out"
    )
    expected = _reference_loss(ANGLES, mask, temperature)
    assert (p2c.item(), c2p.item()) == pytest.approx(expected, abs=1e-10)
    # The child->parent direction written out: anchors are children 2, 3, 4, scores alpha = ext.
    logits = ANGLES / temperature

    def log_norm(anchor: int) -> float:
        return math.log(sum(math.exp(logits[anchor, k]) for k in range(5) if k != anchor))

    by_hand = (
        -(logits[2, 0] - log_norm(2))
        - ((logits[3, 0] + logits[3, 1]) / 2 - log_norm(3))
        - (logits[4, 1] - log_norm(4))
    ) / 3
    assert c2p.item() == pytest.approx(by_hand, abs=1e-10)


def test_multi_positive_infonce_averages_over_positives_then_anchors():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.5, 0.5, 3.0]], dtype=torch.float64)
    positives = torch.tensor([[True, False, True], [False, False, True]])
    candidates = torch.tensor([[True, True, True], [False, True, True]])
    row0 = -((2.0 + 1.0) / 2 - math.log(math.exp(2.0) + 1.0 + math.exp(1.0)))
    row1 = -(3.0 - math.log(math.exp(0.5) + math.exp(3.0)))
    loss = multi_positive_infonce(logits, positives, candidates)
    assert loss.item() == pytest.approx((row0 + row1) / 2, abs=1e-12)


@pytest.mark.parametrize("form", ["per_pair", "supcon_out"])
def test_same_crop_is_never_its_own_negative(form):
    mask = torch.tensor(_mask(5, PARENTS, CHILDREN))
    base = [v.item() for v in bidirectional_infonce(torch.tensor(ANGLES), mask, 0.3, form)]
    # Any self-angle (pi/2 from the clamps, or anything else) leaves the loss unchanged.
    for diagonal in (0.0, math.pi / 2, math.pi):
        angles = torch.tensor(ANGLES).fill_diagonal_(diagonal)
        values = [value.item() for value in bidirectional_infonce(angles, mask, 0.3, form)]
        assert values == pytest.approx(base, abs=1e-12)
    # With one pair the positive is the only candidate in both directions: the loss is exactly 0
    # (it would be positive if the anchor competed with itself).
    single = EntailmentLoss("euclidean")(
        torch.tensor([[1.0, 0.0], [0.2, 0.9]]), torch.tensor([0]), torch.tensor([1])
    )
    assert single["loss"].item() == pytest.approx(0.0, abs=1e-7)


def _euclidean_angles(points: np.ndarray) -> np.ndarray:
    """(N, N) float64 Euclidean exterior angles by the law of cosines in triangle (o, x, y)."""
    x, y = points[:, None, :], points[None, :, :]
    a = np.linalg.norm(x, axis=-1)
    b = np.linalg.norm(y - x, axis=-1)
    opposite = np.linalg.norm(y, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_interior = (a**2 + b**2 - opposite**2) / (2 * a * b)
    return np.pi - np.arccos(np.clip(cos_interior, -1.0, 1.0))


@pytest.mark.parametrize(
    ("form", "reference"), [("per_pair", _per_pair_reference), ("supcon_out", _reference_loss)]
)
def test_entailment_loss_matches_numpy_for_two_parents_three_children(form, reference):
    points = np.array([[0.5, 0.1], [-0.2, 0.6], [1.4, 0.3], [0.3, 1.5], [-1.0, 2.2]])
    loss = EntailmentLoss("euclidean", init_temperature=0.2, form=form)
    out = loss(
        torch.tensor(points, dtype=torch.float32), torch.tensor(PARENTS), torch.tensor(CHILDREN)
    )
    expected_p2c, expected_c2p = reference(
        _euclidean_angles(points), _mask(5, PARENTS, CHILDREN), 0.2
    )
    assert out["parent_to_child"].item() == pytest.approx(expected_p2c, abs=1e-5)
    assert out["child_to_parent"].item() == pytest.approx(expected_c2p, abs=1e-5)
    assert out["loss"].item() == pytest.approx((expected_p2c + expected_c2p) / 2, abs=1e-5)
    assert out["temperature"].item() == pytest.approx(0.2)
    assert out["mean_radius"].item() == pytest.approx(np.linalg.norm(points, axis=1).mean())
    assert out["loss"].dtype == torch.float32


def test_positive_mask_adds_positives_and_defaults_to_the_pairs():
    points = torch.tensor([[0.5, 0.1], [-0.2, 0.6], [1.4, 0.3], [0.3, 1.5], [-1.0, 2.2]])
    loss = EntailmentLoss("euclidean")
    pairs = torch.tensor(PARENTS), torch.tensor(CHILDREN)
    default = loss(points, *pairs)["loss"].item()
    # The same relations as a mask (its diagonal is ignored) give the same loss.
    from_pairs = torch.tensor(_mask(5, PARENTS, CHILDREN)).fill_diagonal_(True)
    assert loss(points, *pairs, positive_mask=from_pairs)["loss"].item() == pytest.approx(default)
    # Crop 0 also entails crop 4 (e.g. a transitive relation): one more positive in each direction.
    extra = torch.tensor(_mask(5, PARENTS + [0], CHILDREN + [4]))
    expected = np.mean(
        _per_pair_reference(_euclidean_angles(points.double().numpy()), extra.numpy(), 0.07)
    )
    assert abs(expected - default) > 1e-2
    assert loss(points, *pairs, positive_mask=extra)["loss"].item() == pytest.approx(
        expected, abs=1e-4
    )


def test_temperature_and_curvature_receive_gradients():
    torch.manual_seed(0)
    curv = torch.tensor(1.0, requires_grad=True)
    embeddings = torch.randn(5, 3, requires_grad=True)
    loss = EntailmentLoss("lorentz")
    out = loss(exp_map0(embeddings, curv), torch.tensor(PARENTS), torch.tensor(CHILDREN), curv=curv)
    out["loss"].backward()
    for grad in (loss.log_temperature.grad, curv.grad):
        assert torch.isfinite(grad) and grad.abs() > 0
    assert torch.isfinite(embeddings.grad).all() and embeddings.grad.abs().sum() > 0
    assert not out["temperature"].requires_grad


def test_temperature_is_clamped_to_its_bounds():
    loss = EntailmentLoss("euclidean", init_temperature=0.07, min_temperature=0.01)
    with torch.no_grad():
        loss.log_temperature.fill_(math.log(1e-4))
    assert loss.temperature.item() == pytest.approx(0.01)
    with torch.no_grad():
        loss.log_temperature.fill_(math.log(50.0))
    assert loss.temperature.item() == pytest.approx(1.0)


@pytest.mark.parametrize("geometry", ["lorentz", "euclidean"])
def test_loss_decreases_on_toy_optimisation_of_free_embeddings(geometry):
    torch.manual_seed(0)
    # Two small trees: 0 > {2, 3}, 1 > {4, 5}; all crops start near the origin, as in training.
    tangents = torch.nn.Parameter(0.1 * torch.randn(6, 3))
    parents, children = torch.tensor([0, 0, 1, 1]), torch.tensor([2, 3, 4, 5])
    loss = EntailmentLoss(geometry)
    optimiser = torch.optim.Adam([tangents, *loss.parameters()], lr=0.05)

    def step() -> torch.Tensor:
        points = exp_map0(tangents, 1.0) if geometry == "lorentz" else tangents
        return loss(points, parents, children, curv=1.0)["loss"]

    initial = step().item()
    for _ in range(150):
        optimiser.zero_grad()
        value = step()
        value.backward()
        optimiser.step()
    final = step().item()
    assert final < 0.25 * initial


def test_loss_runs_in_float32_under_autocast_with_bf16_embeddings():
    torch.manual_seed(1)
    embeddings = exp_map0(torch.randn(5, 8), 1.0).to(torch.bfloat16)
    loss = EntailmentLoss("lorentz")
    pairs = torch.tensor(PARENTS), torch.tensor(CHILDREN)
    plain = loss(embeddings.float(), *pairs, curv=1.0)["loss"]
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        mixed = loss(embeddings, *pairs, curv=1.0)["loss"]
    assert mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(plain.item(), abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "call", "message"),
    [
        ({"geometry": "poincare"}, None, "geometry"),
        ({"form": "supcon"}, None, "loss form"),
        ({"init_temperature": 5.0}, None, "temperature"),
        ({}, {"curv": None}, "curv"),
        ({}, {"parents": [0, 2], "children": [1, 2]}, "same crop"),
        ({}, {"parents": [], "children": []}, "no entailment pairs"),
    ],
)
def test_bad_configuration_or_batch_is_one_clear_error(kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        loss = EntailmentLoss(**kwargs)
        call = call or {}
        loss(
            torch.randn(3, 2),
            torch.tensor(call.get("parents", [0]), dtype=torch.long),
            torch.tensor(call.get("children", [1]), dtype=torch.long),
            curv=call.get("curv", 1.0),
        )
