"""Tests for training.train on CPU: the loss goes down, DDP keeps replicas equal, resume is exact.

A tiny ViT on shards the pipeline writes from a small synthetic dataset (module fixture).
"""

import json
import os
import socket
import statistics
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from training import losses
from training import train as train_module
from training.encoders import load_encoder
from training.step import build_model
from training.train import lr_at, main, parse_config, train
from training.train_config import TrainConfig


@pytest.fixture(scope="module")
def shards(tiny_run) -> str:
    return tiny_run.shards


def _config(shards: str, output: Path, **overrides) -> TrainConfig:
    options = {
        "shards": shards, "output": str(output), "encoder": "tiny-vit", "batch_pairs": 48,
        "shuffle_buffer": 32, "num_workers": 0, "lr": 1e-3, "head_lr": 3e-3, "warmup_steps": 3,
        "max_steps": 20,
        "log_every": 1, "checkpoint_every": 100, "seed": 0, "device": "cpu",
    }  # fmt: skip
    return TrainConfig(**{**options, **overrides})


def _metrics(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]


def _argv(config: TrainConfig) -> list[str]:
    return [f"--{key}={value}" for key, value in vars(config).items() if value is not None]


@pytest.fixture(scope="module")
def short_run(shards, tmp_path_factory) -> tuple[Path, dict]:
    """20 CPU steps with a fixed seed: (output folder, final parameters)."""
    output = tmp_path_factory.mktemp("short_run")
    return output, train(_config(shards, output))


def test_twenty_cpu_steps_lower_the_loss(short_run):
    output, _ = short_run
    records = _metrics(output)
    assert [r["step"] for r in records] == list(range(1, 21))
    loss = [r["loss"] for r in records]
    assert all(r["pairs"] == 48 for r in records)
    # Observed: ~4.9 -> ~3.6 over seeds 0-2, with and without augmentation.
    assert statistics.mean(loss[-5:]) < statistics.mean(loss[:5]) - 0.3


def test_metrics_follow_warmup_and_report_temperature_and_curvature(short_run):
    output, _ = short_run
    records = _metrics(output)
    assert [r["lr"] for r in records[:3]] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3])
    assert [r["head_lr"] for r in records[:3]] == pytest.approx([1e-3, 2e-3, 3e-3])
    assert records[-1]["lr"] < records[3]["lr"]
    assert all(0.01 <= r["temperature"] <= 1.0 and 0.1 <= r["curv"] <= 10.0 for r in records)
    # The trainable geometry moves at its own learning rate; the radius is measured, not assumed.
    assert records[-1]["alpha"] != pytest.approx(128**-0.5, rel=1e-3)
    assert records[-1]["curv"] != pytest.approx(1.0, rel=1e-3)
    assert all(0 < r["mean_radius"] < 10 for r in records)
    assert records[0]["temperature"] == pytest.approx(0.07, abs=1e-6)
    assert all(r["crops"] < 2 * r["pairs"] for r in records)  # unique crops, not pair members
    config = json.loads((output / "config.json").read_text())
    assert config["world_size"] == 1 and config["epoch_samples"] == 120
    assert config["batch_pairs"] == 48 and config["lr"] == 1e-3


def test_exported_encoder_and_checkpoint_hold_the_final_weights(short_run):
    output, params = short_run
    encoder = load_encoder(output / "encoder.safetensors", name="tiny-vit", geometry="lorentz")
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, params[f"encoder.{key}"]), key
    checkpoint = output / "checkpoints" / "step-00000020"
    assert sorted(p.name for p in checkpoint.iterdir()) == ["model.safetensors", "state.pt"]
    state = torch.load(checkpoint / "state.pt", weights_only=True)
    assert state["step"] == 20 and state["data_states"].shape == (1, 3)
    assert "loss.log_temperature" in params


def test_resume_needs_the_same_data_settings(short_run, shards, capsys):
    output, _ = short_run
    config = _config(shards, output, max_steps=25, num_workers=1, resume=True)
    assert main(_argv(config)) == 2
    assert "num_workers" in capsys.readouterr().err


def test_a_fresh_run_refuses_a_folder_with_checkpoints(short_run, shards, capsys):
    output, _ = short_run
    assert main(_argv(_config(shards, output))) == 2
    assert "--resume" in capsys.readouterr().err
    assert [r["step"] for r in _metrics(output)][-1] == 20  # nothing was overwritten


@pytest.mark.parametrize("option", [["--batch_pairs", "0"], ["--lr", "-1"], ["--shards", ""]])
def test_bad_options_are_one_line_user_errors(option, shards, tmp_path, capsys):
    argv = _argv(_config(shards, tmp_path / "run")) + option
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


class _Killed(Exception):
    pass


def test_stop_at_step_k_and_resume_equals_an_uninterrupted_run(shards, tmp_path, monkeypatch):
    """Two DataLoader workers, killed right after the step-3 checkpoint, resumed to step 6."""
    overrides = {"max_steps": 6, "checkpoint_every": 3, "num_workers": 2, "batch_pairs": 32}
    expected = train(_config(shards, tmp_path / "straight", **overrides))

    save = train_module.save_checkpoint

    def save_then_die(output, step, *args):
        save(output, step, *args)
        raise _Killed(step)

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        train(_config(shards, tmp_path / "killed", **overrides))
    monkeypatch.setattr(train_module, "save_checkpoint", save)
    resumed = train(_config(shards, tmp_path / "killed", resume=True, **overrides))

    assert expected.keys() == resumed.keys()
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key
    straight, killed = _metrics(tmp_path / "straight"), _metrics(tmp_path / "killed")
    assert [r["loss"] for r in killed] == [r["loss"] for r in straight]
    assert [r["step"] for r in killed] == list(range(1, 7))


def _ddp_rank(rank: int, world: int, port: int, shards: str, output: str, results: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})  # fmt: skip
    torch.set_num_threads(1)
    params = train(_config(shards, Path(output), max_steps=4, checkpoint_every=2))
    torch.save(params, Path(results) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_process_gloo_ddp_keeps_identical_parameters(shards, tmp_path):
    output, results = tmp_path / "ddp", tmp_path / "results"
    results.mkdir()
    args = (2, _free_port(), shards, str(output), str(results))
    mp.spawn(_ddp_rank, args=args, nprocs=2, join=True)
    rank0, rank1 = (torch.load(results / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    records = _metrics(output)
    assert [r["pairs"] for r in records] == [2 * 48] * 4  # summed over both ranks
    state = torch.load(output / "checkpoints" / "step-00000004" / "state.pt", weights_only=True)
    assert state["world_size"] == 2
    assert state["data_states"][:, 2].tolist() == [4, 4]  # each rank consumed its own 4 batches
    assert not torch.equal(state["rng_states"]["cpu"][0], state["rng_states"]["cpu"][1])


class _Payload:
    """Unpickling this would run open(path, "w"): proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_a_checkpoint_with_a_malicious_pickle_is_refused(shards, tmp_path, capsys):
    output, marker = tmp_path / "run", tmp_path / "pwned"
    checkpoint = output / "checkpoints" / "step-00000001"
    checkpoint.mkdir(parents=True)
    torch.save({"step": _Payload(marker)}, checkpoint / "state.pt")
    assert main(_argv(_config(shards, output, resume=True))) == 2
    err = capsys.readouterr().err
    assert "refusing" in err and "state.pt" in err
    assert not marker.exists()


def test_non_finite_loss_stops_with_exit_code_3(shards, tmp_path, monkeypatch, capsys):
    def nan_infonce(angles, *args):
        nan = angles.sum() * float("nan")
        return nan, nan

    monkeypatch.setattr(losses, "bidirectional_infonce", nan_infonce)
    output = tmp_path / "run"
    assert main(_argv(_config(shards, output, checkpoint_every=1))) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: non-finite loss or gradient (step 0:")
    assert not (output / "checkpoints").exists() and not (output / "encoder.safetensors").exists()


@pytest.mark.parametrize("geometry", ["lorentz", "euclidean"])
def test_backbone_and_trainable_geometry_get_their_own_learning_rates(geometry):
    config = TrainConfig(encoder="tiny-vit", geometry=geometry, lr=1e-4, head_lr=1e-2)
    model, optimizer = build_model(config, torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    head = {
        names[id(p)] for g in optimizer.param_groups if g["base_lr"] == 1e-2 for p in g["params"]
    }
    expected = {"encoder.projection.weight", "loss.log_temperature"}
    if geometry == "lorentz":
        expected |= {"encoder.log_curv", "encoder.log_alpha"}
    assert head == expected
    backbone = [g for g in optimizer.param_groups if g["base_lr"] == 1e-4]
    assert sum(len(g["params"]) for g in backbone) == len(names) - len(expected)
    decayed = {
        names[id(p)] for g in optimizer.param_groups if g["weight_decay"] for p in g["params"]
    }
    assert "encoder.projection.weight" in decayed and "loss.log_temperature" not in decayed


def test_lr_warms_up_linearly_then_decays_by_cosine_to_min_lr():
    config = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=4, max_steps=14)
    assert [lr_at(s, config) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, config) == 1.0
    assert lr_at(9, config) == pytest.approx(0.55)  # halfway: (1 + 0.1) / 2
    assert lr_at(14, config) == pytest.approx(0.1)
    assert lr_at(99, config) == pytest.approx(0.1)


def test_cli_overrides_every_config_field():
    config = parse_config(["--shards", "s-{0..1}.tar", "--batch_pairs", "7", "--lr", "3e-4",
                           "--resume", "--augment", "false", "--weights", "/w"])  # fmt: skip
    assert (config.shards, config.batch_pairs, config.lr) == ("s-{0..1}.tar", 7, 3e-4)
    assert config.resume is True and config.augment is False and config.weights == "/w"
    assert parse_config([]).weights is None and parse_config([]).lr == 2e-5
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--batch_pairs", "many"])
    assert exit_info.value.code == 2
