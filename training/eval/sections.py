"""The report's retrieval, radial and grid sections, computed from the embedded split, as typed
rows that serialise to report.json's objects (report.clean).

Scores: tuned models are ranked by angle, distance and cosine, zero-shot ones by cosine only;
the angle is beta parent -> child and alpha child -> parent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from training.eval.embed import Embedded
from training.eval.metrics import (
    CHILD_TO_PARENT,
    PARENT_TO_CHILD,
    HierarchicalResult,
    PrCurve,
    Relevance,
    default_thresholds,
    hierarchical_retrieval,
    precision_recall_curve,
    same_class_accuracy,
)
from training.eval.models import EmbeddingModel
from training.eval.queries import EvalSet
from training.eval.radial import RadialProbe, radial_probe, radius
from training.eval.retrieval import pairwise_scores, topk_scores


@dataclass(frozen=True)
class SameClassRow:
    """Same-class Top-k accuracy of one direction and score; ``top`` maps k to accuracy."""

    direction: str
    score: str
    queries: int
    candidates: int
    top: dict[int, float]

    def to_json(self) -> dict:
        return {
            "direction": self.direction,
            "score": self.score,
            "queries": self.queries,
            "candidates": self.candidates,
            **{f"top_{k}": v for k, v in self.top.items()},
        }


@dataclass(frozen=True)
class HierarchicalRow:
    """Hierarchical retrieval of one direction and score at one Top-K."""

    direction: str
    score: str
    result: HierarchicalResult

    def to_json(self) -> dict:
        return {"direction": self.direction, "score": self.score, **asdict(self.result)}


@dataclass(frozen=True)
class PrCurveRow:
    """A precision-recall curve of one direction and score, its step-wise area and the
    precision of random pairs (chance)."""

    direction: str
    score: str
    area: float | None
    chance: float
    curve: PrCurve

    def to_json(self) -> dict:
        curve = {key: value.tolist() for key, value in vars(self.curve).items()}
        return {"direction": self.direction, "score": self.score, "area": self.area,
                "chance": self.chance, **curve}  # fmt: skip


@dataclass(frozen=True)
class RetrievalSection:
    """Every retrieval row, and the precision of a random ranking per direction."""

    same_class: list[SameClassRow]
    hierarchical: list[HierarchicalRow]
    pr_curves: list[PrCurveRow]
    chance_precision: dict[str, float]


def score_families(model: EmbeddingModel) -> list[str]:
    """Ranking scores evaluated: angle, distance and cosine for tuned models; zero-shot cosine."""
    return ["cosine"] if model.zero_shot else ["angle", "distance", "cosine"]


def primary_score(model: EmbeddingModel) -> str:
    """The score of the PR curves and the grid: angle for tuned models, cosine for zero-shot."""
    return "cosine" if model.zero_shot else "angle"


def retrieval_score(family: str, direction: str) -> str:
    """The retrieval.SCORES name: the angle is beta parent -> child and alpha child -> parent."""
    if family != "angle":
        return family
    return "angle_p2c" if direction == PARENT_TO_CHILD else "angle_c2p"


def pr_area(curve: PrCurve) -> float | None:
    """Step-wise area under a sampled precision-recall curve (recall ascending, from 0)."""
    keep = np.isfinite(curve.precision) & np.isfinite(curve.recall)
    recall, precision = curve.recall[keep], curve.precision[keep]
    if not len(recall):
        return None
    order = np.lexsort((-precision, recall))
    recall, precision = recall[order], precision[order]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def pr_thresholds(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    score: str,
    curv: float | None,
    levels: int = 201,
    sample: int = 512,
) -> np.ndarray:
    """Thresholds for a PR curve: the fixed grid (every degree, or cosine step 0.01) plus the
    quantiles of a sample of pair scores.

    Trained embeddings can bunch their scores (e.g. all cosines above 0.99), where a fixed grid
    alone collapses the curve to a point; the quantiles put points where the scores are.
    """
    rng = np.random.default_rng(0)
    rows = rng.choice(len(queries), min(sample, len(queries)), replace=False)
    items = rng.choice(len(gallery), min(8 * sample, len(gallery)), replace=False)
    scores = pairwise_scores(queries[rows], gallery[items], score, curv).double().numpy()
    quantiles = np.quantile(scores, np.linspace(0.0, 1.0, levels))
    return np.unique(np.concatenate([default_thresholds(score), quantiles]))


def _directions(emb: torch.Tensor, ev: EvalSet) -> dict[str, tuple]:
    """Per direction: hierarchical (queries, gallery, relevance) and same-class (queries,
    gallery, gallery labels, target labels).

    Same-class: child -> parent queries are the sampled child crops, a hit an image holding a
    box of the child's label; parent -> child queries are (sampled image, label of one of its
    child crops) pairs, a hit a child crop of that label. Hierarchical: the sampled images
    against all child crops and the sampled child crops against all images, correct per
    down(labels(I)).
    """
    parents, children = emb[ev.parents], emb[ev.children]
    pair_parent, pair_code = ev.same_class_pairs()
    child_queries = children[ev.child_queries]
    to_children = Relevance.parent_to_child(
        ev.labels, ev.parent_labels[ev.parent_queries], ev.child_codes
    )
    to_parents = Relevance.child_to_parent(
        ev.labels, ev.child_codes[ev.child_queries], ev.parent_labels
    )
    return {
        PARENT_TO_CHILD: (
            (parents[ev.parent_queries], children, to_children),
            (parents[pair_parent], children, ev.child_codes, pair_code),
        ),
        CHILD_TO_PARENT: (
            (child_queries, parents, to_parents),
            (child_queries, parents, ev.parent_labels, ev.child_codes[ev.child_queries]),
        ),
    }


def retrieval_metrics(
    emb: torch.Tensor, ev: EvalSet, model: EmbeddingModel, top_k: list[int | float]
) -> RetrievalSection:
    """Same-class accuracy, hierarchical retrieval and PR curves, both directions, every score
    (PR curves for the primary score and cosine)."""
    out = RetrievalSection([], [], [], {})
    for direction, (hierarchical, same_class) in _directions(emb, ev).items():
        queries, gallery, relevance = hierarchical
        ks = [k for k in top_k if isinstance(k, float) or k <= len(gallery)]
        # A random ranking's expected precision: the share of correct candidates per query.
        share = relevance.counts() / len(gallery)
        out.chance_precision[direction] = float(share[share > 0].mean())
        for family in score_families(model):
            score = retrieval_score(family, direction)
            q, g, gallery_labels, targets = same_class
            accuracy = same_class_accuracy(q, g, gallery_labels, targets, score, model.curv)
            out.same_class.append(SameClassRow(direction, family, len(q), len(g), accuracy))
            for result in hierarchical_retrieval(
                queries, gallery, relevance, ks, score, model.curv
            ):
                out.hierarchical.append(HierarchicalRow(direction, family, result))
            if family in (primary_score(model), "cosine"):
                thresholds = pr_thresholds(queries, gallery, score, model.curv)
                curve = precision_recall_curve(
                    queries, gallery, relevance, score, model.curv, thresholds
                )
                out.pr_curves.append(
                    PrCurveRow(direction, family, pr_area(curve), float(share.mean()), curve)
                )
    return out


def radial_metrics(emb: torch.Tensor, ev: EvalSet, curv: float | None) -> dict[str, RadialProbe]:
    """Radial probe over whole images (depth 0) and known boxes, and over the boxes alone."""
    rows = np.concatenate([ev.parents, ev.boxes])
    return {
        "all_crops": radial_probe(emb[rows], ev.depth[rows], curv),
        "boxes_only": radial_probe(emb[ev.boxes], ev.depth[ev.boxes], curv),
    }


@dataclass(frozen=True)
class GridCrop:
    """One crop of the retrieval grid: where to read it (image_id, key, shard), its label and
    embedding radius; for a retrieved item also its score, whether it is correct (in down(I))
    and its label's display name."""

    image_id: str
    key: str
    label: str | None
    shard: str
    radius: float
    score: float | None = None
    correct: bool | None = None
    name: str | None = None


@dataclass(frozen=True)
class GridRow:
    """A parent query and its top items, sorted by radius (small = general, first)."""

    query: GridCrop
    items: list[GridCrop]


def retrieval_grid(
    emb: torch.Tensor,
    embedded: Embedded,
    ev: EvalSet,
    model: EmbeddingModel,
    names: dict[str, str],
    n_queries: int,
    n_items: int,
    seed: int,
) -> list[GridRow]:
    """Rows of the Fig. 4-style grid: a parent query and its top items sorted by radius."""
    queries = ev.parent_queries[
        np.random.default_rng([seed, 2]).permutation(len(ev.parent_queries))[:n_queries]
    ]
    if not len(queries) or not len(ev.children):
        return []
    score = retrieval_score(primary_score(model), PARENT_TO_CHILD)
    values, indices = topk_scores(
        emb[ev.parents[queries]],
        emb[ev.children],
        min(n_items, len(ev.children)),
        score,
        model.curv,
    )
    radii = radius(emb, model.curv).numpy()
    accepted = ev.labels.accepted(ev.parent_labels[queries])
    columns = embedded.crops.select(["image_id", "key", "label", "shard"])
    rows = []
    for q, (vals, idx) in enumerate(zip(values.tolist(), indices.numpy(), strict=True)):
        found = columns.take(ev.children[idx]).to_pylist()
        items = [
            GridCrop(
                **crop,
                radius=float(radii[ev.children[i]]),
                score=v,
                correct=bool(accepted[q, ev.child_codes[i]]),
                name=names.get(crop["label"], crop["label"]),
            )
            for crop, v, i in zip(found, vals, idx, strict=True)
        ]
        parent = ev.parents[queries[q]]
        query = GridCrop(**columns.take([parent]).to_pylist()[0], radius=float(radii[parent]))
        rows.append(GridRow(query, sorted(items, key=lambda item: item.radius)))
    return rows
