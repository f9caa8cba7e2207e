"""Tests for training.experiment: the Lorentz / Euclidean / zero-shot comparison on a tiny demo
output (120/20/20 synthetic images, 2 training steps per geometry), and its rerun reuse.
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


def _config(root) -> ExperimentConfig:
    return ExperimentConfig(
        output=str(root), steps=2, batch_pairs=16, warmup_steps=1, num_workers=0, max_queries=30
    )


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
    assert saved["config"]["steps"] == 2 and len(saved["rows"]) == 5
    assert all(0 <= r["c2p_top5"] <= 1 and -1 <= r["kendall_tau"] <= 1 for r in saved["rows"])
    assert saved["rows"][0]["final_loss"] is not None and saved["rows"][4]["final_loss"] is None
    text = (folder / "results.md").read_text()
    assert text.count("| Lorentz |") == 2 and "| zero-shot | cosine |" in text
    assert "## What this run shows" in text
    assert (folder / "pr_curves.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("lorentz", "euclidean"):
        config = json.loads((folder / name / "train" / "config.json").read_text())
        assert config["geometry"] == name and config["max_steps"] == 2  # the same budget


def test_rerun_reuses_training_and_the_embedding_cache(demo_root, monkeypatch):
    run(_config(demo_root))  # idempotent if the test above ran first
    calls = []
    monkeypatch.setattr(experiment, "train", lambda config: calls.append(config))
    run(_config(demo_root))
    assert calls == []
    assert json.loads((demo_root / "experiment" / "results.json").read_text())["training_reused"]
    report = json.loads((demo_root / "experiment" / "lorentz" / "eval" / "report.json").read_text())
    assert report["embedding"]["cache_hit"]


def test_missing_demo_output_exits_2(tmp_path, capsys):
    assert main(["--output", str(tmp_path), "--steps", "2"]) == 2
    assert "run the pipeline demo first" in capsys.readouterr().err
