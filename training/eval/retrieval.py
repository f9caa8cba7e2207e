"""Retrieval scoring: top-K per query over a large gallery, chunked, one matmul per block.

Scores: entailment angles (beta parent->child, alpha child->parent), distance and cosine, for
Lorentz embeddings (``curv`` given) or Euclidean ones (``curv=None``); see SCORES.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from training.geometry import (
    MIN_NORM_SQ,
    MIN_RELATIVE_GAP_SQ,
    compute_dtype,
    euclidean_exterior_angle,
    exterior_angle,
    half_chord_distance,
    lorentz_angle_key_,
    lorentz_distance,
    lorentz_gallery_terms,
    lorentz_query_terms,
    pairwise_euclidean_exterior_angle,
    pairwise_exterior_angle,
)

# "angle_p2c": beta = pi - ext(query, item), the query is the parent (higher = more entailed).
# "angle_c2p": alpha = ext(query, item), the query is the child (higher = more entailed).
# "distance": geodesic (Lorentz) or Euclidean distance (lower = closer).
# "cosine": cosine similarity of the raw vectors (higher = closer); the zero-shot score.
SCORES = ("angle_p2c", "angle_c2p", "distance", "cosine")
# Query-item pairs whose exact score is recomputed at once (x D floats twice).
_VALUE_SLICE = 8_192


def higher_is_better(score: str) -> bool:
    """True for the scores where a larger value means a better match (all but "distance")."""
    _check_score(score)
    return score != "distance"


def resolve_k(k: int | float, n_candidates: int) -> int:
    """Top-K as a count: an int in [1, n_candidates], or a float fraction in (0, 1] of them.

    A fraction rounds to the nearest count, at least 1.
    """
    if isinstance(k, bool) or not isinstance(k, int | float):
        raise TypeError(f"k must be an int count or a float fraction, got {k!r}")
    if isinstance(k, float):
        if not 0.0 < k <= 1.0:
            raise ValueError(f"a fractional k must lie in (0, 1], got {k}")
        return max(1, round(k * n_candidates))
    if not 1 <= k <= n_candidates:
        raise ValueError(f"k must lie in [1, {n_candidates}] (the candidates), got {k}")
    return k


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")


@dataclass(frozen=True)
class _Terms:
    """Per-vector terms: ``matrix`` (B, D') enters the block matmul, the rest are (B,) extras."""

    matrix: Tensor
    extra: tuple[Tensor, ...] = ()


class _Scorer:
    """One score in one geometry: the block matmul, its in-place ranking key, exact values.

    ``rank_largest`` says whether the key is maximised. The key is a strictly monotone function
    of the score within each query row (a row-constant factor or a monotone map dropped), so
    ranking by it equals ranking by the score; the exact score is computed only for the top K.
    """

    rank_largest = True
    needs_scratch = False
    keys_are_values = False

    def __init__(self, score: str, curv: float | None) -> None:
        self.score, self.curv = score, curv

    def query_terms(self, x: Tensor) -> _Terms:
        raise NotImplementedError

    def gallery_terms(self, y: Tensor) -> _Terms:
        raise NotImplementedError

    def key_(self, block: Tensor, scratch: Tensor, query: _Terms, gallery: _Terms) -> None:
        """Turn the matmul block (Bq, Bg) into ranking keys in place.

        ``scratch`` is a free buffer of the block's shape; ``gallery`` holds the block's columns.
        Each step is one whole-block elementwise op: on CPU, per-op overhead makes many small
        cache-sized passes slower than a few large ones (see bench/bench_retrieval.py).
        """

    def values(self, x: Tensor, y: Tensor) -> Tensor:
        """Row-wise exact score of pairs (x[i], y[i]), (B,)."""
        raise NotImplementedError


class _Cosine(_Scorer):
    # The block of normalised vectors already holds the cosines, to float rounding.
    keys_are_values = True

    def query_terms(self, x: Tensor) -> _Terms:
        return _Terms(torch.nn.functional.normalize(x, dim=-1))

    gallery_terms = query_terms


class _LorentzDistance(_Scorer):
    """Block = q = -c<x,y>_L - 1 from one matmul (geometry's block forms)."""

    rank_largest = False

    def query_terms(self, x: Tensor) -> _Terms:
        matrix, a, time = lorentz_query_terms(x, self.curv)
        return _Terms(matrix, (a, time))

    def gallery_terms(self, y: Tensor) -> _Terms:
        matrix, b = lorentz_gallery_terms(y, self.curv)
        return _Terms(matrix, (b,))

    def values(self, x: Tensor, y: Tensor) -> Tensor:
        return lorentz_distance(x, y, self.curv)


class _LorentzAngle(_LorentzDistance):
    """Key ∝ cos ext(x, y) (geometry.lorentz_angle_key_): beta is maximised, alpha minimised."""

    needs_scratch = True

    def __init__(self, score: str, curv: float | None) -> None:
        super().__init__(score, curv)
        self.rank_largest = score == "angle_p2c"

    def key_(self, block: Tensor, scratch: Tensor, query: _Terms, gallery: _Terms) -> None:
        a, time = query.extra
        lorentz_angle_key_(block, scratch, a, time, gallery.extra[0])

    def values(self, x: Tensor, y: Tensor) -> Tensor:
        angle = exterior_angle(x, y, self.curv)
        return math.pi - angle if self.score == "angle_p2c" else angle


class _EuclideanDistance(_Scorer):
    """Block = |x - y|^2 from one matmul of ``[-2x, |x|^2, 1] . [y, 1, |y|^2]``."""

    rank_largest = False

    def query_terms(self, x: Tensor) -> _Terms:
        norm_sq = x.square().sum(-1, keepdim=True)
        return _Terms(torch.cat([-2.0 * x, norm_sq, torch.ones_like(norm_sq)], 1))

    def gallery_terms(self, y: Tensor) -> _Terms:
        norm_sq = y.square().sum(-1, keepdim=True)
        return _Terms(torch.cat([y, torch.ones_like(norm_sq), norm_sq], 1))

    def values(self, x: Tensor, y: Tensor) -> Tensor:
        return (x - y).norm(dim=-1)


class _EuclideanAngle(_Scorer):
    """Block = ``<x, y - x>`` from ``[x, -|x|^2] . [y, 1]``; key ∝ cos ext (as for Lorentz).

    ``|y - x|^2 = |y|^2 - |x|^2 - 2<x, y - x>``, floored as in geometry's Euclidean angle.
    """

    needs_scratch = True

    def __init__(self, score: str, curv: float | None) -> None:
        super().__init__(score, curv)
        self.rank_largest = score == "angle_p2c"

    def query_terms(self, x: Tensor) -> _Terms:
        norm_sq = x.square().sum(-1)
        return _Terms(torch.cat([x, -norm_sq[:, None]], 1), (norm_sq,))

    def gallery_terms(self, y: Tensor) -> _Terms:
        norm_sq = y.square().sum(-1)
        return _Terms(torch.cat([y, torch.ones_like(norm_sq)[:, None]], 1), (norm_sq,))

    def key_(self, block: Tensor, scratch: Tensor, query: _Terms, gallery: _Terms) -> None:
        x_sq = query.extra[0][:, None]
        torch.add(gallery.extra[0], block, alpha=-2.0, out=scratch).sub_(x_sq)
        # The matmul form of |y - x|^2 rounds at ~1e-7 (|x|^2 + |y|^2) and can go negative.
        # geometry floors it at 1e-6 (|x|^2 + |y|^2); the floor binds only for y ~ x, where
        # |y|^2 ~ |x|^2, so a per-row 2e-6 |x|^2 saves a whole-block pass.
        floor = torch.clamp(2.0 * MIN_RELATIVE_GAP_SQ * x_sq, min=MIN_NORM_SQ)
        block.mul_(torch.maximum(scratch, floor, out=scratch).rsqrt_())

    def values(self, x: Tensor, y: Tensor) -> Tensor:
        angle = euclidean_exterior_angle(x, y)
        return math.pi - angle if self.score == "angle_p2c" else angle


def make_scorer(score: str, curv: float | Tensor | None) -> _Scorer:
    """The scorer of one score (SCORES) in the geometry ``curv`` gives (None: Euclidean)."""
    _check_score(score)
    if score == "cosine":
        return _Cosine(score, None)
    if curv is None:
        return (_EuclideanDistance if score == "distance" else _EuclideanAngle)(score, None)
    curv = float(curv)
    if not curv > 0:
        raise ValueError(f"curvature must be positive, got {curv}")
    return (_LorentzDistance if score == "distance" else _LorentzAngle)(score, curv)


def _exact_values(scorer: _Scorer, batch: Tensor, gallery: Tensor, index: Tensor) -> Tensor:
    """Row-wise exact scores (B, k) of batch[i] against gallery[index[i, j]].

    Gathered in slices of at most _VALUE_SLICE query-item pairs, so a large k (a fraction of
    the gallery) does not build a (B, k, D) copy at once.
    """
    rows = max(1, _VALUE_SLICE // index.shape[1])
    return torch.cat(
        [
            scorer.values(
                batch[lo : lo + rows, None, :].expand(-1, index.shape[1], -1).flatten(0, 1),
                gallery[index[lo : lo + rows].flatten()],
            ).view(-1, index.shape[1])
            for lo in range(0, len(batch), rows)
        ]
    )


def _merge(
    best: tuple[Tensor, Tensor] | None, new: tuple[Tensor, Tensor], k: int, largest: bool
) -> tuple[Tensor, Tensor]:
    """Top-k of the union of two (keys, indices) candidate lists per row."""
    if best is None:
        return new
    keys, order = torch.cat([best[0], new[0]], 1).topk(k, dim=1, largest=largest)
    return keys, torch.cat([best[1], new[1]], 1).gather(1, order)


def iter_topk(
    queries: Tensor,
    gallery: Tensor,
    k: int,
    score: str,
    curv: float | Tensor | None = None,
    query_chunk: int = 256,
    gallery_chunk: int = 262_144,
) -> Iterator[tuple[int, Tensor, Tensor]]:
    """Top-k gallery items of each query, one chunk of queries at a time.

    Each (query_chunk, gallery_chunk) block is one matmul of per-vector augmented terms plus a
    few in-place elementwise passes (no (B1, B2, D) tensor, no per-pair Python object); blocks
    of one query chunk are merged by top-k. The exact score is then recomputed row-wise for the
    k winners (training.geometry for angles) and the k are sorted by it. Peak extra memory is
    about ``query_chunk * gallery_chunk`` scores plus the gallery's augmented copy (G, D + 3).

    Args:
        queries: (Q, D) embeddings (Lorentz space components when ``curv`` is given).
        gallery: (G, D) embeddings, same space.
        k: items per query, 1 <= k <= G (see resolve_k for fractions).
        score: one of SCORES. The angle apex is always the query: "angle_p2c" ranks by
            ``beta = pi - ext(query, item)`` (query = parent), "angle_c2p" by
            ``alpha = ext(query, item)`` (query = child).
        curv: Lorentz curvature ``c`` > 0, or None for Euclidean geometry (ignored by cosine).
        query_chunk, gallery_chunk: block shape (angle scores use query_chunk / 2 rows and a
            scratch block of that size).

    Yields:
        ``(start, values, indices)`` per query chunk: rows ``start:start + B``, values (B, k)
        sorted best first (descending; ascending for "distance"), indices (B, k) int64 into
        the gallery. Near-ties closer than float32 rounding (~1e-6) may rank either way.
    """
    if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"need (Q, D) and (G, D) inputs, got {tuple(queries.shape)} and {tuple(gallery.shape)}"
        )
    k = resolve_k(k, gallery.shape[0])
    scorer = make_scorer(score, curv)
    dtype = compute_dtype(queries, gallery)
    gallery = gallery.to(dtype)
    with torch.no_grad(), torch.autocast(device_type=queries.device.type, enabled=False):
        # bf16/fp16 matmuls (autocast) would cost 3 digits of the key.
        columns = scorer.gallery_terms(gallery)
        width = min(gallery_chunk, gallery.shape[0])
        # Angles keep a scratch block beside the score block: half the rows each, so every
        # score peaks at query_chunk * gallery_chunk floats. Both are allocated once; a fresh
        # block per chunk would page-fault through its whole size every time.
        rows_per_block = max(1, query_chunk // 2) if scorer.needs_scratch else query_chunk
        buffer = torch.empty(rows_per_block * width, dtype=dtype, device=queries.device)
        scratch = torch.empty_like(buffer) if scorer.needs_scratch else buffer
        for start in range(0, queries.shape[0], rows_per_block):
            batch = queries[start : start + rows_per_block].to(dtype)
            rows = scorer.query_terms(batch)
            best = None
            for lo in range(0, gallery.shape[0], width):
                part = _Terms(
                    columns.matrix[lo : lo + width],
                    tuple(t[lo : lo + width] for t in columns.extra),
                )
                size = batch.shape[0] * part.matrix.shape[0]
                block = buffer[:size].view(batch.shape[0], -1)
                torch.mm(rows.matrix, part.matrix.T, out=block)
                scorer.key_(block, scratch[:size].view_as(block), rows, part)
                keys, index = block.topk(
                    min(k, part.matrix.shape[0]), dim=1, largest=scorer.rank_largest
                )
                best = _merge(best, (keys, index + lo), k, scorer.rank_largest)
            keys, index = best
            values = (
                keys if scorer.keys_are_values else _exact_values(scorer, batch, gallery, index)
            )
            values, order = values.sort(dim=1, descending=higher_is_better(score), stable=True)
            yield start, values, index.gather(1, order)


def topk_scores(
    queries: Tensor,
    gallery: Tensor,
    k: int,
    score: str,
    curv: float | Tensor | None = None,
    query_chunk: int = 256,
    gallery_chunk: int = 262_144,
) -> tuple[Tensor, Tensor]:
    """All of iter_topk at once: values (Q, k) best first and gallery indices (Q, k) int64."""
    chunks = list(iter_topk(queries, gallery, k, score, curv, query_chunk, gallery_chunk))
    return torch.cat([c[1] for c in chunks]), torch.cat([c[2] for c in chunks])


def pairwise_scores(
    queries: Tensor, gallery: Tensor, score: str, curv: float | Tensor | None = None
) -> Tensor:
    """The exact score of every (query, item) pair, (Q, G); for small blocks and thresholds.

    Angles come from training.geometry's pairwise functions; see iter_topk for the scores.
    """
    scorer = make_scorer(score, curv)
    dtype = compute_dtype(queries, gallery)
    queries, gallery = queries.to(dtype), gallery.to(dtype)
    with torch.no_grad(), torch.autocast(device_type=queries.device.type, enabled=False):
        if score == "cosine":
            return scorer.query_terms(queries).matrix @ scorer.gallery_terms(gallery).matrix.T
        if score == "distance":
            block = scorer.query_terms(queries).matrix @ scorer.gallery_terms(gallery).matrix.T
            # Matmul rounding can dip q and |x - y|^2 below their true minimum 0.
            block = block.clamp_(min=0.0)
            if scorer.curv is None:
                return block.sqrt_()
            return half_chord_distance(block, scorer.curv)
        if scorer.curv is None:
            angle = pairwise_euclidean_exterior_angle(queries, gallery)
        else:
            angle = pairwise_exterior_angle(queries, gallery, scorer.curv)
        return math.pi - angle if score == "angle_p2c" else angle
