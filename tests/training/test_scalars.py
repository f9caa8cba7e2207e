"""Training metrics as TensorBoard scalars beside metrics.jsonl, and --shards DIR."""

import json
from pathlib import Path

import pytest

from training.data import expand_shards
from training.scalars import TAG_PREFIX, ScalarLog
from training.train import main

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    events = event_accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def test_a_shard_folder_stands_for_every_shard_in_its_sizes_json(tiny_run):
    folder = tiny_run.train_dir
    listed = sorted(json.loads((folder / "sizes.json").read_text()))
    assert expand_shards(str(folder)) == [f"{folder}/{name}" for name in listed]
    assert expand_shards(str(folder)) == expand_shards(tiny_run.shards)  # the brace spec


def test_metrics_go_to_tensorboard_as_to_jsonl(tiny_run, tmp_path):
    output = tmp_path / "run"
    argv = [
        "--shards", str(tiny_run.train_dir), "--output", str(output),
        "--encoder", "tiny-vit", "--batch-pairs", "16", "--shuffle-buffer", "8",
        "--num-workers", "0", "--max-steps", "3", "--log-every", "1", "--device", "cpu",
    ]  # fmt: skip
    assert main(argv) == 0
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    scalars = _scalars(output / "tensorboard")
    assert [step for step, _ in scalars[TAG_PREFIX + "loss"]] == [1, 2, 3]
    for record in records:
        for key in ("loss", "lr", "temperature", "grad_norm"):
            got = dict(scalars[TAG_PREFIX + key])[record["step"]]
            assert got == pytest.approx(record[key], rel=1e-6)


def test_a_resumed_log_drops_the_interrupted_steps_after_its_start(tmp_path):
    first = ScalarLog(str(tmp_path), start_step=0)
    for step in (1, 2, 3, 4):
        first.write({"step": step, "loss": float(step), "curv": None, "name": "x"})
    first.close()
    resumed = ScalarLog(str(tmp_path), start_step=2)  # metrics.jsonl is cut back to step 2
    resumed.write({"step": 3, "loss": 30.0})
    resumed.close()
    assert _scalars(tmp_path) == {TAG_PREFIX + "loss": [(1, 1.0), (2, 2.0), (3, 30.0)]}
