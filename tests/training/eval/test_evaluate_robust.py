"""Evaluation on damaged or mismatched inputs: trees of another run are refused, a corrupt
cache entry is embedded again, a corrupt checkpoint is one error line."""

import json
import shutil
from pathlib import Path

import pytest

from hierdata.errors import InputError
from training.eval.evaluate import EvalConfig, evaluate


def _config(tiny_run, output: Path, **overrides) -> EvalConfig:
    options = {
        "shards": str(tiny_run.output / "shards" / "validation" / "validation-000000.tar"),
        "trees": str(tiny_run.trees),
        "output": str(output),
        "zero_shot": True,
        "max_queries": 20,
        "grid_queries": 0,
        "progress": False,
        "device": "cpu",
        "workers": 1,
    }
    return EvalConfig(**{**options, **overrides})


def test_trees_of_another_run_are_refused(tiny_run, tmp_path) -> None:
    """The issue: evaluation with trees from another run silently gave other numbers."""
    trees = tmp_path / "trees"
    shutil.copytree(tiny_run.trees, trees)
    tree = json.loads((trees / "label_tree.json").read_text())
    assert tree["graph"]["run_fingerprint"]  # the pipeline stamped its run
    tree["graph"]["run_fingerprint"] = "0123456789abcdef"
    (trees / "label_tree.json").write_text(json.dumps(tree))
    with pytest.raises(InputError, match="trees are from pipeline run 0123456789abcdef"):
        evaluate(_config(tiny_run, tmp_path / "out", trees=str(trees)))


def test_corrupt_cache_entry_is_embedded_again(tiny_run, tmp_path, caplog) -> None:
    cache = tmp_path / "cache"
    first = evaluate(_config(tiny_run, tmp_path / "one", cache_dir=str(cache)))
    entry = cache / first["embedding"]["key"]
    (entry / "embeddings.npy").write_bytes(b"\x93NUMPY cut short")
    second = evaluate(_config(tiny_run, tmp_path / "two", cache_dir=str(cache)))
    assert not second["embedding"]["cache_hit"] and "embedding again" in caplog.text
    assert second["same_class"] == first["same_class"]
    third = evaluate(_config(tiny_run, tmp_path / "three", cache_dir=str(cache)))
    assert third["embedding"]["cache_hit"]  # the entry was rewritten


def test_corrupt_checkpoint_is_one_input_error(tiny_run, tmp_path) -> None:
    broken = tmp_path / "encoder.safetensors"
    broken.write_bytes(b"\xff" * 64)
    with pytest.raises(InputError, match="is not a readable safetensors file") as caught:
        evaluate(_config(tiny_run, tmp_path / "out", zero_shot=False, checkpoint=str(broken)))
    assert "\n" not in str(caught.value)
