"""Tests for training.eval.evaluate: options, then the whole evaluation end to end on small
demo outputs (report files, every metric family, the cache, zero-shot, kNN, user errors).

Module fixture: the shared pipeline run (tests/training/conftest.py) and 5 CPU training
steps of a tiny ViT; evaluation runs on the 120-image train split (enough candidates for Top-100).
"""

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.eval import models
from training.eval.evaluate import EvalConfig, evaluate, main, parse_top_k
from training.train import main as train_main

KNN_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def test_top_k_option_parses_counts_and_fractions():
    assert parse_top_k("10, 50,0.05") == [10, 50, 0.05]


@pytest.fixture(scope="module")
def demo(tiny_run, tmp_path_factory) -> dict:
    """The shared run's train split, and an encoder trained on it for 5 steps."""
    root = tmp_path_factory.mktemp("eval_demo")
    train_out = root / "train_out"
    argv = [
        f"--shards={tiny_run.shards}",
        f"--output={train_out}",
        "--encoder=tiny-vit",
        "--batch_pairs=32",
        "--num_workers=0",
        "--lr=1e-3",
        "--warmup_steps=2",
        "--max_steps=5",
        "--device=cpu",
    ]
    assert train_main(argv) == 0
    return {
        "shards": tiny_run.shards,
        "shard_dir": tiny_run.train_dir,
        "trees": str(tiny_run.trees),
        "checkpoint": str(train_out / "encoder.safetensors"),
        "root": root,
    }


def _knn_folder(root: Path) -> Path:
    """train/ 4 and val/ 2 noisy solid-colour images per class."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for name, colour in KNN_COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(np.array(colour) + rng.normal(0, 12, (40, 48, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i}.png")
    return root


def _config(demo: dict, output: Path, **overrides) -> EvalConfig:
    options = {
        "shards": demo["shards"],
        "trees": demo["trees"],
        "output": str(output),
        "checkpoint": demo["checkpoint"],
        "max_queries": 60,
        "progress": False,
        "device": "cpu",
        "workers": 2,
    }
    return EvalConfig(**{**options, **overrides})


@pytest.fixture(scope="module")
def tuned(demo) -> tuple[Path, dict]:
    output = demo["root"] / "eval_tuned"
    knn = _knn_folder(demo["root"] / "knn")
    return output, evaluate(_config(demo, output, knn_folder=str(knn)))


def test_end_to_end_report_files_exist(tuned):
    output, _ = tuned
    for name in (
        "report.json",
        "report.md",
        "plots/pr_curves.png",
        "plots/retrieval_grid.png",
        "plots/radius_by_depth.png",
    ):
        assert (output / name).is_file(), name
    assert (output / "plots" / "pr_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((output / "report.json").read_text())  # strict JSON: no NaN
    assert saved["model"]["kind"] == "tuned" and saved["model"]["geometry"] == "lorentz"
    text = (output / "report.md").read_text()
    assert "| parent → child | angle |" in text and "## kNN classification" in text


def test_every_unique_crop_is_embedded_once_without_cross_image_copies(tuned, demo):
    _, report = tuned
    entries = []
    for path in sorted(demo["shard_dir"].glob("train-*.tar")):
        with tarfile.open(path) as tar:
            entries += tar.getnames()
    own = [n for n in entries if n.endswith(".img.jpg") or (".b" in n and n.endswith(".jpg"))]
    assert any(".x" in n for n in entries)  # the fixture does carry cross-image crops
    assert report["embedding"]["crops"] == len(own) == len(set(own))
    assert report["data"]["images"] == 120
    assert report["embedding"]["crops"] == 120 + report["data"]["boxes"]


def test_same_class_precision_and_hit_at_k_both_directions_every_score(tuned):
    _, report = tuned
    seen = {(r["direction"], r["score"]) for r in report["same_class"]}
    assert seen == {
        (d, s)
        for d in ("parent_to_child", "child_to_parent")
        for s in ("angle", "distance", "cosine")
    }
    for row in report["same_class"]:
        hits = [row[f"hit_at_{k}"] for k in (5, 10, 50, 100)]
        precisions = [row[f"precision_at_{k}"] for k in (5, 10, 50, 100)]
        assert hits == sorted(hits) and all(0 <= v <= 1 for v in hits + precisions)
        # At least one of the first k hits whenever any does: precision@k <= hit@k.
        assert all(p <= h + 1e-12 for p, h in zip(precisions, hits, strict=True))
    # Parent -> child: one query per sampled whole image (those with a same-class crop).
    p2c = [r for r in report["same_class"] if r["direction"] == "parent_to_child"]
    assert all(r["queries"] <= report["data"]["parent_queries"] for r in p2c)
    assert all(r["candidates"] == report["data"]["children"] for r in p2c)


def test_hierarchical_precision_recall_in_unit_range_and_recall_grows_with_k(tuned):
    _, report = tuned
    assert report["data"]["parent_queries"] == 60 and report["data"]["child_queries"] == 60
    for direction in ("parent_to_child", "child_to_parent"):
        rows = [
            r
            for r in report["hierarchical"]
            if r["direction"] == direction and r["score"] == "angle"
        ]
        assert [r["k"] for r in rows] == [0.25, 0.3333, 0.4167]  # Table 2's K of 600k
        for row in rows:
            assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
            assert (row["ot"] is None) == (direction == "child_to_parent")
        by_count = sorted(rows, key=lambda r: r["count"])
        recalls = [r["recall"] for r in by_count]
        assert recalls == sorted(recalls)
    assert 0 < report["chance_precision"]["parent_to_child"] < 1


def test_pr_curves_clustering_radial_and_knn_values_are_sane(tuned):
    _, report = tuned
    curves = {(c["direction"], c["score"]) for c in report["pr_curves"]}
    assert ("parent_to_child", "angle") in curves and ("child_to_parent", "cosine") in curves
    for curve in report["pr_curves"]:
        precision = np.array(curve["precision"], dtype=float)
        assert np.nanmin(precision) >= 0 and np.nanmax(precision) <= 1
        assert 0 <= curve["area"] <= 1
    assert [c["depth"] for c in report["clustering"]] == list(
        range(1, len(report["clustering"]) + 1)
    )
    assert all(c["ami"] <= 1 and 0 < c["purity"] <= 1 for c in report["clustering"])
    assert all(0 < c["accuracy"] <= c["purity"] for c in report["clustering"])
    radial = report["radial"]["all_crops"]
    assert -1 <= radial["kendall_tau"] <= 1
    assert radial["per_depth"][0]["depth"] == 0 and radial["per_depth"][0]["items"] == 120
    probes = report["radial"]["entailment"]
    assert [p["root"] for p in probes] == ["origin", "centroid", "blank image"]
    # One pair per box (its tree parent), less the few with no unrelated partner to draw.
    boxes = report["data"]["boxes"]
    assert all(0.9 * boxes <= p["pairs"] <= boxes and 0 <= p["auc"] <= 1 for p in probes)
    assert report["knn"]["classes"] == 3 and report["knn"]["val_images"] == 6
    assert 0 <= report["knn"]["accuracy"] <= 1


def test_second_evaluation_reads_the_cache_and_embeds_no_crop_again(demo, tmp_path, monkeypatch):
    calls = []
    original = models.EmbeddingModel.embed_pixels

    def counting(self, pixels):
        calls.append(len(pixels))
        return original(self, pixels)

    monkeypatch.setattr(models.EmbeddingModel, "embed_pixels", counting)
    cache = str(tmp_path / "cache")
    first = evaluate(_config(demo, tmp_path / "one", cache_dir=cache, grid_queries=0))
    embedded = sum(calls)
    # Every crop once, plus the blank image of the radial probe's root.
    assert embedded == first["embedding"]["crops"] + 1 and not first["embedding"]["cache_hit"]
    second = evaluate(_config(demo, tmp_path / "two", cache_dir=cache, grid_queries=0))
    assert sum(calls) == embedded + 1  # the second time only the blank image is embedded
    assert first["plots"] == ["pr_curves.png", "radius_by_depth.png"]  # grid_queries=0: no grid
    assert "## Retrieval grid" not in (tmp_path / "one" / "report.md").read_text()
    assert (
        second["embedding"]["cache_hit"] and second["embedding"]["key"] == first["embedding"]["key"]
    )
    assert second["same_class"] == first["same_class"]
    meta = json.loads((tmp_path / "cache" / first["embedding"]["key"] / "meta.json").read_text())
    assert meta["fingerprint"].startswith("checkpoint:") and meta["curv"] > 0


def test_zero_shot_scores_by_cosine_only(demo, tmp_path):
    report = evaluate(
        _config(
            demo,
            tmp_path,
            checkpoint=None,
            zero_shot=True,
            encoder="tiny-vit",
            grid_queries=1,
            grid_items=3,
        )
    )
    assert report["model"]["kind"] == "zero-shot" and report["model"]["scores"] == ["cosine"]
    assert {r["score"] for r in report["same_class"] + report["hierarchical"]} == {"cosine"}
    thresholds = report["pr_curves"][0]["thresholds"]
    assert 0.0 in thresholds and 0.5 in thresholds and thresholds[-1] <= 1  # cosine, not angles
    # CLIP's projected image embedding (projection_dim 512), not the 128-d pooled output.
    assert report["embedding"]["dim"] == 512
    assert report["model"]["features"].startswith("CLIP image embedding")
    assert (tmp_path / "plots" / "retrieval_grid.png").is_file()


def test_knn_separates_solid_colour_classes(demo, tmp_path):
    knn = _knn_folder(tmp_path / "folder")
    report = evaluate(
        _config(
            demo,
            tmp_path / "out",
            checkpoint=None,
            zero_shot=True,
            knn_folder=str(knn),
            knn_k=3,
            grid_queries=0,
        )
    )
    assert report["knn"]["train_images"] == 12 and report["knn"]["k"] == 3
    assert report["knn"]["accuracy"] == 1.0


@pytest.mark.parametrize(
    "argv_tail",
    [
        [],  # neither --checkpoint nor --zero-shot
        ["--checkpoint", "/nonexistent/encoder.safetensors"],
        ["--zero-shot", "--encoder", "no-such-encoder"],
        ["--zero-shot", "--min_child_area", "0.5", "--max_child_area", "0.1"],
    ],
)
def test_user_errors_exit_2_with_one_line(demo, tmp_path, capsys, argv_tail):
    argv = [
        "--shards",
        demo["shards"],
        "--trees",
        demo["trees"],
        "--output",
        str(tmp_path),
        "--progress",
        "false",
        *argv_tail,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_missing_trees_exit_2(demo, tmp_path, capsys):
    argv = [
        "--shards",
        demo["shards"],
        "--trees",
        str(tmp_path / "none"),
        "--output",
        str(tmp_path),
        "--zero-shot",
    ]
    assert main(argv) == 2
    assert "label_tree.json" in capsys.readouterr().err


def test_hhot_without_pot_is_a_clear_user_error(demo, tmp_path, capsys):
    try:
        import ot  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("POT is installed: HHOT runs instead of failing")
    argv = [
        "--shards",
        demo["shards"],
        "--trees",
        demo["trees"],
        "--output",
        str(tmp_path),
        "--zero-shot",
        "--hhot",
        "--progress",
        "false",
        "--grid_queries",
        "0",
    ]
    assert main(argv) == 2
    assert "pip install pot" in capsys.readouterr().err
