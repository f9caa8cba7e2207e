"""Tests for training.experiment: the Lorentz / Euclidean / zero-shot comparison over seeds on a
tiny demo output (120/20/20 synthetic images, 2 training steps per geometry and seed), its
intervals and paired comparisons, and its rerun reuse.
"""

import json
import shutil

import pytest

from training import experiment
from training.experiment import ExperimentConfig, main, run


@pytest.fixture(scope="module")
def demo_root(tiny_run, tmp_path_factory):
    """A writable copy of the shared pipeline output (the experiment writes into it)."""
    root = tmp_path_factory.mktemp("experiment") / "output"
    shutil.copytree(tiny_run.output, root)
    return root


def _config(root, seeds: int = 2) -> ExperimentConfig:
    return ExperimentConfig(output=str(root), seeds=seeds, steps=2, batch_pairs=16,
                            warmup_steps=1, num_workers=0, max_queries=30)  # fmt: skip


def test_one_table_compares_lorentz_euclidean_and_zero_shot(demo_root):
    result = run(_config(demo_root))
    rows = [(r.model, r.score) for r in result.rows]
    assert rows == [
        ("Lorentz", "angle"),
        ("Lorentz", "cosine"),
        ("Euclidean", "angle"),
        ("Euclidean", "cosine"),
        ("zero-shot", "cosine"),
    ]
    folder = demo_root / "experiment"
    saved = json.loads((folder / "results.json").read_text())
    assert saved["config"]["steps"] == 2 and saved["seeds"] == [0, 1] and len(saved["rows"]) == 5
    for row in saved["rows"]:
        precision = row["metrics"]["c2p_precision_at_5"]
        assert precision["n"] == 2 and len(precision["values"]) == 2
        assert precision["ci_low"] <= precision["mean"] <= precision["ci_high"]
        assert all(0 <= v <= 1 for v in precision["values"])
        assert -1 <= row["metrics"]["kendall_tau"]["mean"] <= 1
    assert saved["rows"][0]["final_loss"]["n"] == 2 and saved["rows"][4]["final_loss"] is None
    pairs = {(c["a"], c["b"]) for c in saved["comparisons"]}
    assert pairs == {("Lorentz/angle", "Euclidean/angle"), ("Lorentz/angle", "zero-shot/cosine"),
                     ("Euclidean/angle", "zero-shot/cosine")}  # fmt: skip
    assert all(c["p_value"] is None or c["p_value"] <= c["p_holm"] <= 1
               for c in saved["comparisons"])  # fmt: skip
    text = (folder / "results.md").read_text()
    assert text.count("| Lorentz |") == 3 and "| zero-shot | cosine |" in text  # two tables
    assert "## What this run shows" in text and "Holm" in text and "Lorentz − Euclidean" in text
    assert (folder / "pr_curves.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("lorentz", "euclidean"):
        for seed in (0, 1):
            config = json.loads(
                (folder / name / f"seed-{seed}" / "train" / "config.json").read_text()
            )
            assert config["geometry"] == name and config["max_steps"] == 2  # the same budget
            assert config["seed"] == seed and config["loss"] == "per_pair"
    assert (folder / "zero_shot" / "seed-1" / "eval" / "report.json").is_file()


def test_one_seed_states_that_nothing_is_tested(demo_root, tmp_path):
    root = tmp_path / "output"
    shutil.copytree(demo_root, root, ignore=shutil.ignore_patterns("experiment"))
    run(_config(root, seeds=1))
    text = (root / "experiment" / "results.md").read_text()
    assert "One seed: no interval and no test" in text


def test_rerun_reuses_training_and_the_embedding_cache(demo_root, monkeypatch):
    run(_config(demo_root))  # idempotent if the test above ran first
    calls = []
    monkeypatch.setattr(experiment, "train", lambda config: calls.append(config))
    run(_config(demo_root))
    assert calls == []
    assert json.loads((demo_root / "experiment" / "results.json").read_text())["training_reused"]
    report_json = demo_root / "experiment" / "lorentz" / "seed-1" / "eval" / "report.json"
    report = json.loads(report_json.read_text())
    assert report["embedding"]["cache_hit"]


def test_missing_demo_output_exits_2(tmp_path, capsys):
    assert main(["--output", str(tmp_path), "--steps", "2"]) == 2
    assert "run the pipeline demo first" in capsys.readouterr().err
