"""Evaluation: how well embeddings reproduce the derived hierarchy, in the paper's, HierNet's and
the radial-embedding terms; writes OUTPUT/report.json, report.md and plots/*.png.

Run: ``python -m training.evaluate --shards 'OUT/shards/validation/validation-{000000..000001}.tar'
--trees OUT/trees --checkpoint TRAIN_OUT/encoder.safetensors --output EVAL_OUT``, or with
``--zero-shot --encoder NAME [--weights LOCAL]`` instead of ``--checkpoint`` for the untuned
baseline (the backbone's pooled features scored by cosine; with no --weights a random init,
which is a floor, not a pre-trained baseline).

Every unique crop of the split (whole images and their boxes, not the xNNN copies) is embedded
once and cached (training.eval.embed), so repeated evaluations skip the encoder. Whole images are
the parents; boxes covering 5-30% of their image the children (training.eval.queries). Metrics:
same-class Top-5/10/50/100 both ways; hierarchical precision, recall and OT at Top-K against
down(labels(I)); precision-recall curves over angle (tuned) or cosine (zero-shot) thresholds;
Ward clustering AMI/purity (and HHOT) per tree depth; the radial probe; kNN on an ImageFolder.

Exit codes: 0 done; 2 a user error (bad option, missing shards, trees or checkpoint), one line.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hierdata.errors import InputError
from hierdata.io import join, read_bytes
from hierdata.trees import tree_from_node_link
from training.cli import option, parse_dataclass
from training.data import expand_shards
from training.encoders import ENCODERS
from training.eval import report as eval_report
from training.eval.clustering import hierarchy_clustering_scores
from training.eval.embed import (
    Embedded,
    EmbeddingModel,
    embed_files,
    from_checkpoint,
    load_or_embed,
    resolve_device,
    zero_shot,
)
from training.eval.knn import knn_accuracy
from training.eval.labels import LabelIndex
from training.eval.metrics import (
    CHILD_TO_PARENT,
    PARENT_TO_CHILD,
    Relevance,
    default_thresholds,
    hierarchical_retrieval,
    precision_recall_curve,
    same_class_accuracy,
)
from training.eval.queries import CHILD_AREA, EvalSet, build_eval_set
from training.eval.radial import radial_probe, radius
from training.eval.retrieval import pairwise_scores, topk_scores

EXIT_USER_ERROR = 2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclass
class EvalConfig:
    shards: str = option("", "eval shard spec (brace ranges, comma lists; local or gs://)")
    trees: str = option("", "the pipeline's trees folder (label_tree.json) or that file")
    output: str = option("eval_out", "local folder for report.json, report.md, plots/")
    checkpoint: str | None = option(None, "a tuned encoder (training.train's encoder.safetensors)")
    zero_shot: bool = option(False, "evaluate the untuned --encoder (cosine) instead")
    encoder: str = option("tiny-vit", f"zero-shot encoder: one of {', '.join(ENCODERS)}")
    weights: str | None = option(None, "zero-shot backbone weights (local); none: random init")
    seed: int = option(0, "seeds the query subsets (and a zero-shot random init)")
    max_queries: int = option(1000, "at most this many parent and this many child queries")
    min_child_area: float = option(CHILD_AREA[0], "child crops: box area fraction >= this")
    max_child_area: float = option(CHILD_AREA[1], "child crops: box area fraction <= this")
    top_k: str = option("10,50,100,0.05,0.2", "hierarchical Top-K: counts or fractions")
    cache_dir: str | None = option(None, "embedding cache (any fsspec URL); none: OUTPUT/cache")
    knn_folder: str | None = option(None, "ImageFolder with train/ and val/ class folders")
    knn_k: int = option(5, "kNN neighbours (majority vote by cosine)")
    hhot: bool = option(False, "also compute HHOT in the clustering metrics (needs POT)")
    cluster_max_items: int = option(5000, "Ward clustering on at most this many box crops")
    grid_queries: int = option(4, "rows of the retrieval grid plot")
    grid_items: int = option(8, "retrieved crops per row of the grid")
    batch_size: int = option(256, "crops per encoder batch")
    workers: int = option(4, "JPEG decoding threads")
    device: str = option("auto", "auto (cuda when available), cuda or cpu")
    progress: bool = option(True, "show progress bars")


def parse_config(argv: list[str] | None = None) -> EvalConfig:
    """EvalConfig from ``--field value`` options (``--zero-shot`` and ``--zero_shot`` alike)."""
    return parse_dataclass(
        EvalConfig, argv, "python -m training.evaluate", __doc__, dashed_aliases=True
    )


def parse_top_k(text: str) -> list[int | float]:
    """ "10,50,0.05" -> [10, 50, 0.05]: integers are counts, decimals fractions of candidates."""
    try:
        return [
            float(part) if "." in part else int(part)
            for part in (p.strip() for p in text.split(","))
            if part
        ]
    except ValueError as err:
        raise InputError(f"--top_k must be a comma list of counts or fractions: {text!r}") from err


def read_label_tree(trees: str) -> tuple[LabelIndex, dict[str, str]]:
    """The label tree in a trees folder (label_tree.json) or that JSON file: its LabelIndex and
    each label's display name."""
    url = trees if trees.endswith(".json") else join(trees, "label_tree.json")
    try:
        tree = tree_from_node_link(json.loads(read_bytes(url)))
        return LabelIndex.from_tree(tree), {n: a.get("name", n) for n, a in tree.nodes(data=True)}
    except (ValueError, KeyError) as err:
        raise InputError(f"{url} is not a label tree: {err}") from err


def _check_config(config: EvalConfig) -> None:
    if bool(config.checkpoint) == bool(config.zero_shot):
        raise InputError("give exactly one of --checkpoint PATH or --zero-shot")
    if not config.shards or not config.trees:
        raise InputError("--shards and --trees are required")
    if not 0 <= config.min_child_area <= config.max_child_area <= 1:
        raise InputError("need 0 <= --min_child_area <= --max_child_area <= 1")
    if config.max_queries < 1 or config.knn_k < 1 or config.batch_size < 1:
        raise InputError("--max_queries, --knn_k and --batch_size must be >= 1")
    # Fail before embedding, not after: HHOT is the last metric computed.
    if config.hhot and importlib.util.find_spec("ot") is None:
        raise InputError("--hhot needs the POT package (import name 'ot'): pip install pot")


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


def pr_area(curve: dict) -> float | None:
    """Step-wise area under a sampled precision-recall curve (recall ascending, from 0)."""
    keep = np.isfinite(curve["precision"]) & np.isfinite(curve["recall"])
    recall, precision = curve["recall"][keep], curve["precision"][keep]
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


def retrieval_metrics(
    emb: torch.Tensor, ev: EvalSet, model: EmbeddingModel, top_k: list[int | float]
) -> dict:
    """Same-class accuracy, hierarchical retrieval and PR curves, both directions, every score.

    Same-class: child -> parent queries are the sampled child crops, a hit an image holding a box
    of the child's label; parent -> child queries are (sampled image, label of one of its child
    crops) pairs, a hit a child crop of that label. Hierarchical: the sampled images against all
    child crops and the sampled child crops against all images, correct per down(labels(I)).
    """
    parents, children = emb[ev.parents], emb[ev.children]
    pair_parent, pair_code = ev.same_class_pairs()
    sides = {
        PARENT_TO_CHILD: (
            parents[ev.parent_queries],
            children,
            Relevance.parent_to_child(
                ev.labels, ev.parent_labels[ev.parent_queries], ev.child_codes
            ),
        ),
        CHILD_TO_PARENT: (
            children[ev.child_queries],
            parents,
            Relevance.child_to_parent(
                ev.labels, ev.child_codes[ev.child_queries], ev.parent_labels
            ),
        ),
    }
    same_class = {
        PARENT_TO_CHILD: (parents[pair_parent], children, ev.child_codes, pair_code),
        CHILD_TO_PARENT: (
            children[ev.child_queries],
            parents,
            ev.parent_labels,
            ev.child_codes[ev.child_queries],
        ),
    }
    out = {"same_class": [], "hierarchical": [], "pr_curves": [], "chance_precision": {}}
    for direction, (queries, gallery, relevance) in sides.items():
        ks = [k for k in top_k if isinstance(k, float) or k <= len(gallery)]
        # A random ranking's expected precision: the share of correct candidates per query.
        share = relevance.counts() / len(gallery)
        out["chance_precision"][direction] = float(share[share > 0].mean())
        for family in score_families(model):
            score = retrieval_score(family, direction)
            q, g, gallery_labels, targets = same_class[direction]
            accuracy = same_class_accuracy(q, g, gallery_labels, targets, score, model.curv)
            out["same_class"].append(
                {
                    "direction": direction,
                    "score": family,
                    "queries": len(q),
                    "candidates": len(g),
                    **{f"top_{k}": v for k, v in accuracy.items()},
                }
            )
            for row in hierarchical_retrieval(queries, gallery, relevance, ks, score, model.curv):
                out["hierarchical"].append({"direction": direction, "score": family, **row})
            if family in (primary_score(model), "cosine"):
                thresholds = pr_thresholds(queries, gallery, score, model.curv)
                curve = precision_recall_curve(
                    queries, gallery, relevance, score, model.curv, thresholds
                )
                out["pr_curves"].append(
                    {
                        "direction": direction,
                        "score": family,
                        "area": pr_area(curve),
                        "chance": float(share.mean()),
                        **{key: value.tolist() for key, value in curve.items()},
                    }
                )
    return out


def radial_metrics(emb: torch.Tensor, ev: EvalSet, curv: float | None) -> dict:
    """Radial probe over whole images (depth 0) and known boxes, and over the boxes alone."""
    rows = np.concatenate([ev.parents, ev.boxes])
    return {
        "all_crops": radial_probe(emb[rows], ev.depth[rows], curv),
        "boxes_only": radial_probe(emb[ev.boxes], ev.depth[ev.boxes], curv),
    }


def retrieval_grid(
    emb: torch.Tensor,
    embedded: Embedded,
    ev: EvalSet,
    model: EmbeddingModel,
    names: dict[str, str],
    n_queries: int,
    n_items: int,
    seed: int,
) -> list[dict]:
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
            {
                **crop,
                "score": v,
                "radius": float(radii[ev.children[i]]),
                "correct": bool(accepted[q, ev.child_codes[i]]),
                "name": names.get(crop["label"], crop["label"]),
            }
            for crop, v, i in zip(found, vals, idx, strict=True)
        ]
        parent = ev.parents[queries[q]]
        rows.append(
            {
                "query": {**columns.take([parent]).to_pylist()[0], "radius": float(radii[parent])},
                "items": sorted(items, key=lambda item: item["radius"]),
            }
        )
    return rows


def image_folder(root: Path) -> tuple[list[Path], list[str]]:
    """Image files under root/<class>/ (sorted) and their class names."""
    paths = sorted(p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return paths, [p.parent.name for p in paths]


def knn_metrics(model: EmbeddingModel, folder: str, k: int, config: EvalConfig) -> dict:
    """kNN zero-shot classification: train/ candidates, val/ queries, top-k cosine vote."""
    train_paths, train_names = image_folder(Path(folder) / "train")
    val_paths, val_names = image_folder(Path(folder) / "val")
    if not train_paths or not val_paths:
        raise InputError(f"--knn_folder {folder} needs images in train/<class>/ and val/<class>/")
    classes = sorted(set(train_names) | set(val_names))
    code = {name: i for i, name in enumerate(classes)}
    train = torch.from_numpy(embed_files(model, train_paths, config.batch_size, config.workers))
    val = torch.from_numpy(embed_files(model, val_paths, config.batch_size, config.workers))
    k = min(k, len(train_paths))
    accuracy = knn_accuracy(
        train,
        np.array([code[n] for n in train_names]),
        val,
        np.array([code[n] for n in val_names]),
        k,
    )
    return {
        "folder": folder,
        "k": k,
        "accuracy": accuracy,
        "classes": len(classes),
        "train_images": len(train_paths),
        "val_images": len(val_paths),
    }


def evaluate(config: EvalConfig) -> dict:
    """Embed (or load) the split, compute every metric, write the report; returns report.json."""
    _check_config(config)
    started = time.perf_counter()
    device = resolve_device(config.device)
    top_k = parse_top_k(config.top_k)
    labels, names = read_label_tree(config.trees)
    urls = expand_shards(config.shards)
    model = (
        zero_shot(config.encoder, config.weights, config.seed, device)
        if config.zero_shot
        else from_checkpoint(config.checkpoint, device)
    )
    cache_dir = config.cache_dir or str(Path(config.output) / "cache")
    embedded = load_or_embed(
        model, urls, cache_dir, config.batch_size, config.workers, config.progress
    )
    emb = torch.from_numpy(embedded.embeddings)
    ev = build_eval_set(
        embedded.crops,
        labels,
        (config.min_child_area, config.max_child_area),
        config.max_queries,
        config.seed,
    )
    if not len(ev.children) or not len(ev.parent_queries):
        raise InputError("no child crops in the area range or no images: nothing to retrieve")
    timings = {"embed_or_load": time.perf_counter() - started}

    report = {
        "model": {
            "kind": "zero-shot" if model.zero_shot else "tuned",
            **model.description,
            "geometry": model.geometry,
            "curv": model.curv,
            "primary_score": primary_score(model),
            "scores": score_families(model),
        },
        "data": {
            "shards": urls,
            "trees": config.trees,
            **ev.counts(),
            "unknown_labels": ev.unknown_labels,
        },
        "embedding": {
            "key": embedded.key,
            "cache_hit": embedded.cache_hit,
            "crops": embedded.crops.num_rows,
            "dim": int(emb.shape[1]),
        },
        "config": asdict(config),
    }
    report.update(retrieval_metrics(emb, ev, model, top_k))
    timings["retrieval"] = time.perf_counter() - started - sum(timings.values())
    report["clustering"] = hierarchy_clustering_scores(
        embedded.embeddings[ev.boxes],
        ev.box_codes,
        labels,
        config.hhot,
        config.cluster_max_items,
        config.seed,
    )
    report["radial"] = radial_metrics(emb, ev, model.curv)
    report["knn"] = (
        knn_metrics(model, config.knn_folder, config.knn_k, config) if config.knn_folder else None
    )
    grid = retrieval_grid(
        emb, embedded, ev, model, names, config.grid_queries, config.grid_items, config.seed
    )
    timings["total"] = time.perf_counter() - started
    report["seconds"] = timings
    return eval_report.write_report(Path(config.output), report, grid)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    try:
        report = evaluate(config)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    headline = eval_report.headline(report)
    print(
        " ".join(
            f"{k}={v:.3f}" if isinstance(v, float) and not math.isnan(v) else f"{k}={v}"
            for k, v in headline.items()
        ),
        file=sys.stderr,
    )
    print(f"report: {Path(config.output) / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
