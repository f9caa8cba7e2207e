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
from training.eval.hierarchical import HierarchicalResult, hierarchical_retrieval
from training.eval.metrics import (
    CHILD_TO_PARENT,
    PARENT_TO_CHILD,
    PrCurve,
    Relevance,
    SameClassScores,
    default_thresholds,
    precision_recall_curve,
    same_class_retrieval,
)
from training.eval.models import EmbeddingModel
from training.eval.queries import EvalSet
from training.eval.radial import (
    EntailmentAngles,
    RadialProbe,
    entailment_angles,
    radial_probe,
    radius,
    tangent_vectors,
)
from training.eval.retrieval import pairwise_scores, topk_scores


@dataclass(frozen=True)
class SameClassRow:
    """Same-class retrieval of one direction and score: precision@k (the paper's Table 1) and
    hit@k over the queries with a same-class candidate."""

    direction: str
    score: str
    candidates: int
    scores: SameClassScores

    def to_json(self) -> dict:
        return {
            "direction": self.direction,
            "score": self.score,
            "queries": self.scores.queries,
            "candidates": self.candidates,
            **{f"precision_at_{k}": v for k, v in self.scores.precision.items()},
            **{f"hit_at_{k}": v for k, v in self.scores.hit.items()},
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
    """Per direction: (queries, gallery, hierarchical relevance, gallery labels, query labels).

    Parent -> child: one query per sampled whole image against every child crop; hierarchical
    ground truth down(labels(I)), same-class a crop whose class is among the image's classes.
    Child -> parent: the sampled child crops against every image; the same relation read
    backwards, same-class an image holding a box of the crop's class.
    """
    parents, children = emb[ev.parents], emb[ev.children]
    image_labels = ev.parent_labels[ev.parent_queries]
    crop_labels = ev.child_codes[ev.child_queries]
    return {
        PARENT_TO_CHILD: (
            parents[ev.parent_queries],
            children,
            Relevance.parent_to_child(ev.labels, image_labels, ev.child_codes),
            ev.child_codes,
            image_labels,
        ),
        CHILD_TO_PARENT: (
            children[ev.child_queries],
            parents,
            Relevance.child_to_parent(ev.labels, crop_labels, ev.parent_labels),
            ev.parent_labels,
            crop_labels,
        ),
    }


def retrieval_metrics(
    emb: torch.Tensor, ev: EvalSet, model: EmbeddingModel, top_k: list[int | float]
) -> RetrievalSection:
    """Same-class precision@k and hit@k, hierarchical retrieval at Top-K and PR curves, both
    directions, every score (PR curves for the primary score and cosine)."""
    out = RetrievalSection([], [], [], {})
    for direction, (queries, gallery, relevance, labels, targets) in _directions(emb, ev).items():
        ks = [k for k in top_k if isinstance(k, float) or k <= len(gallery)]
        # A random ranking's expected precision: the share of correct candidates per query.
        share = relevance.counts() / len(gallery)
        out.chance_precision[direction] = float(share[share > 0].mean())
        for family in score_families(model):
            score = retrieval_score(family, direction)
            scores = same_class_retrieval(queries, gallery, labels, targets, score, model.curv)
            out.same_class.append(SameClassRow(direction, family, len(gallery), scores))
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


@dataclass(frozen=True)
class RadialSection:
    """The radial probes: radius vs depth over all crops (images at depth 0) and over the boxes
    alone, and RE's entailment angles with the origin, the centroid of the crops and the
    embedding of a blank (mean-colour) image as the root."""

    all_crops: RadialProbe
    boxes_only: RadialProbe
    entailment: list[EntailmentAngles]


def radial_metrics(
    emb: torch.Tensor, ev: EvalSet, model: EmbeddingModel, seed: int = 0
) -> RadialSection:
    """Radial probes of the embedded split (see RadialSection).

    The blank image is RE's "underspecified input" for images, as the empty string is for text.
    """
    rows = np.concatenate([ev.parents, ev.boxes])
    vectors = tangent_vectors(emb, model.curv)
    blank = torch.tensor(model.fill, dtype=torch.uint8)[None, :, None, None]
    blank = blank.expand(1, 3, model.image_size, model.image_size)
    roots = {
        "origin": torch.zeros(emb.shape[1]),
        "centroid": vectors[torch.from_numpy(rows)].mean(0),
        "blank image": tangent_vectors(model.embed_pixels(blank), model.curv)[0],
    }
    pairs = ev.entailment_pairs(seed=seed)
    return RadialSection(
        all_crops=radial_probe(emb[rows], ev.depth[rows], model.curv),
        boxes_only=radial_probe(emb[ev.boxes], ev.depth[ev.boxes], model.curv),
        entailment=[entailment_angles(vectors, *pairs, root, name) for name, root in roots.items()],
    )


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
