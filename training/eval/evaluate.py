"""Evaluation: how well embeddings reproduce the derived hierarchy, in the paper's, HierNet's and
the radial-embedding terms; writes OUTPUT/report.json, report.md and plots/*.png
(names in schemas.training_layout).

Run: ``python -m training.evaluate --shards 'OUT/shards/validation/validation-{000000..000001}.tar'
--trees OUT/trees --checkpoint TRAIN_OUT/encoder.safetensors --output EVAL_OUT``, or with
``--zero-shot --encoder NAME [--weights LOCAL]`` instead of ``--checkpoint`` for the untuned
baseline (as pre-trained: CLIP's projected image embedding, a ResNet's pooled features, scored
by cosine; with no --weights a random init, which is a floor, not a pre-trained baseline).

Every unique crop of the split (whole images and their boxes, not the xNNN copies) is embedded
once and cached (training.eval.embed), so repeated evaluations skip the encoder. Whole images are
the parents; boxes covering 5-30% of their image the children (training.eval.queries); 10,000
image and 10,000 box queries (capped by the split). Metrics: same-class precision@k and hit@k,
k = 5/10/50/100, both ways; hierarchical precision, recall and OT at the paper's Top-K (Table 2's
K as fractions of the candidates) against down(labels(I)); precision-recall curves over angle
(tuned) or cosine (zero-shot) thresholds; Ward clustering accuracy/AMI/purity (and HHOT) per
tree depth; the radial probes; kNN on an ImageFolder (training.eval.sections, hierarchical,
clustering, radial, knn; report.md by training.eval.report, the PNGs by training.eval.plots).

Exit codes: 0 done; 2 a user error (bad option, missing shards, trees or checkpoint), one line.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from hierdata import ground_truth
from hierdata.errors import InputError, run_command
from hierdata.io import read_bytes, write_bytes, write_json
from hierdata.outputs import check_same_run, trees_run
from hierdata.trees import graph_from_node_link
from schemas.layout import LABEL_TREE_JSON, label_closure_parquet, label_tree_json
from schemas.training_layout import (
    PR_CURVES_PNG,
    RADIUS_BY_DEPTH_PNG,
    RETRIEVAL_GRID_PNG,
    EvalOutput,
)
from training.cli import option, parse_dataclass
from training.data import expand_shards
from training.encoders import ENCODERS
from training.eval import plots
from training.eval.clustering import hierarchy_clustering_scores
from training.eval.embed import Embedded, load_or_embed
from training.eval.hierarchical import PAPER_TOP_K_FRACTIONS
from training.eval.knn import knn_metrics
from training.eval.labels import LabelIndex
from training.eval.models import EmbeddingModel, from_checkpoint, zero_shot
from training.eval.queries import CHILD_AREA, EvalSet, build_eval_set
from training.eval.report import clean, headline, markdown
from training.eval.sections import (
    GridRow,
    primary_score,
    radial_metrics,
    retrieval_grid,
    retrieval_metrics,
    score_families,
)
from training.runtime import resolve_device

# Table 2's K = 150k, 200k, 250k of 600k candidates, as fractions (4 digits: 0.25, 0.3333, ...).
PAPER_TOP_K_OPTION = ",".join(f"{fraction:.4f}" for fraction in PAPER_TOP_K_FRACTIONS)


@dataclass
class EvalConfig:
    shards: str = option("", "eval shard spec (brace ranges, comma lists; local or gs://)")
    trees: str = option("", f"the pipeline's trees folder ({LABEL_TREE_JSON}) or that file")
    output: str = option("eval_out", "local folder for report.json, report.md, plots/")
    checkpoint: str | None = option(None, "a tuned encoder (training.train's encoder.safetensors)")
    zero_shot: bool = option(False, "evaluate the untuned --encoder (cosine) instead")
    encoder: str = option("tiny-vit", f"zero-shot encoder: one of {', '.join(ENCODERS)}")
    weights: str | None = option(None, "zero-shot backbone weights (local); none: random init")
    seed: int = option(0, "seeds the query subsets (and a zero-shot random init)")
    max_queries: int = option(10_000, "at most this many image and this many box queries")
    min_child_area: float = option(CHILD_AREA[0], "child crops: box area fraction >= this")
    max_child_area: float = option(CHILD_AREA[1], "child crops: box area fraction <= this")
    top_k: str = option(PAPER_TOP_K_OPTION, "hierarchical Top-K: counts or fractions")
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
    """The label tree in a trees folder (label_tree.json) or that JSON file, with the ground
    truth beside it (label_closure.parquet, DESIGN "Ground truth"): its LabelIndex and each
    label's display name. A missing file is an InputError naming it."""
    url, closure_url = label_tree_json(trees), label_closure_parquet(trees)
    try:
        tree = graph_from_node_link(json.loads(read_bytes(url)))
    except (ValueError, KeyError) as err:
        raise InputError(f"{url} is not a label tree: {err}") from err
    try:
        down = ground_truth.down_sets(ground_truth.read_closure(closure_url))
    except (ValueError, KeyError) as err:
        raise InputError(f"{closure_url} is not a label closure: {err}") from err
    names = {n: a.get("name", n) for n, a in tree.nodes(data=True)}
    return LabelIndex.from_tree(tree, down), names


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


def load_model(config: EvalConfig, device: torch.device) -> EmbeddingModel:
    """The tuned --checkpoint, or the untuned --encoder with --zero-shot."""
    if config.zero_shot:
        return zero_shot(config.encoder, config.weights, config.seed, device)
    return from_checkpoint(config.checkpoint, device)


def describe(
    config: EvalConfig,
    model: EmbeddingModel,
    urls: list[str],
    ev: EvalSet,
    embedded: Embedded,
) -> dict:
    """The report's model, data, embedding and config sections."""
    return {
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
            "dim": int(embedded.embeddings.shape[1]),
        },
        "config": asdict(config),
    }


def evaluate(config: EvalConfig) -> dict:
    """Embed (or load) the split, compute every metric, write the report; returns report.json."""
    _check_config(config)
    started = time.perf_counter()
    device = resolve_device(config.device)
    top_k = parse_top_k(config.top_k)
    labels, names = read_label_tree(config.trees)
    urls = expand_shards(config.shards)
    # Trees and shards of different pipeline runs would score crops against another ground
    # truth: refused by the run fingerprints in the label tree and the shard markers.
    check_same_run(trees_run(json.loads(read_bytes(label_tree_json(config.trees)))), urls)
    model = load_model(config, device)
    cache_dir = config.cache_dir or EvalOutput(config.output).default_cache_dir
    embedded = load_or_embed(
        model, urls, cache_dir, config.batch_size, config.workers, config.progress
    )
    emb = torch.from_numpy(embedded.embeddings)
    child_area = (config.min_child_area, config.max_child_area)
    ev = build_eval_set(embedded.crops, labels, child_area, config.max_queries, config.seed)
    if not len(ev.children) or not len(ev.parent_queries):
        raise InputError("no child crops in the area range or no images: nothing to retrieve")
    timings = {"embed_or_load": time.perf_counter() - started}

    report = describe(config, model, urls, ev, embedded)
    retrieval = retrieval_metrics(emb, ev, model, top_k)
    report.update(
        same_class=retrieval.same_class,
        hierarchical=retrieval.hierarchical,
        pr_curves=retrieval.pr_curves,
        chance_precision=retrieval.chance_precision,
    )
    timings["retrieval"] = time.perf_counter() - started - sum(timings.values())
    report["clustering"] = hierarchy_clustering_scores(
        embedded.embeddings[ev.boxes],
        ev.box_codes,
        labels,
        config.hhot,
        config.cluster_max_items,
        config.seed,
    )
    report["radial"] = radial_metrics(emb, ev, model, config.seed)
    report["knn"] = (
        knn_metrics(model, config.knn_folder, config.knn_k, config.batch_size, config.workers)
        if config.knn_folder
        else None
    )
    grid = retrieval_grid(
        emb, embedded, ev, model, names, config.grid_queries, config.grid_items, config.seed
    )
    timings["total"] = time.perf_counter() - started
    report["seconds"] = timings
    return write_report(config.output, report, grid)


def write_report(output: str, report: dict, grid: list[GridRow]) -> dict:
    """OUTPUT/report.json, report.md and plots/{pr_curves,radius_by_depth,retrieval_grid}.png.

    Returns the report as written: JSON-safe (report.clean), with the plot file names added.
    """
    layout = EvalOutput(output)
    report = clean(report)
    pngs = {
        PR_CURVES_PNG: plots.pr_plot(report["pr_curves"]),
        RADIUS_BY_DEPTH_PNG: plots.radius_plot(report["radial"]),
    }
    if grid:
        pngs[RETRIEVAL_GRID_PNG] = plots.grid_plot(grid)
    for name, png in pngs.items():
        write_bytes(layout.plot(name), png)
    report["plots"] = sorted(pngs)
    write_json(layout.report_json, report)
    write_bytes(layout.report_md, (markdown(report) + "\n").encode())
    return report


def _evaluate_command(config: EvalConfig) -> None:
    """Evaluate, then print the headline numbers and where the report is."""
    report = evaluate(config)
    numbers = asdict(headline(report))
    print(
        " ".join(
            f"{k}={v:.3f}" if isinstance(v, float) and not math.isnan(v) else f"{k}={v}"
            for k, v in numbers.items()
        )
    )
    print(f"report: {Path(EvalOutput(config.output).report_md)}")


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: _evaluate_command(parse_config(argv)))
