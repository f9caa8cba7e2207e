"""Corrupt weights and checkpoint files are one InputError or ValueError line, never a
traceback (a cut download, a damaged disk)."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hierdata.errors import InputError
from schemas.training_layout import CheckpointFiles
from training.backbone_weights import load_weights_file
from training.checkpoints import load_checkpoint
from training.train_config import TrainConfig


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("w.safetensors", b"\xff" * 64, "is not a readable safetensors file"),
        ("w.pth", b"PK\x03\x04 cut short", "is not a readable checkpoint file"),
        ("w.pt", b"", "is not a readable checkpoint file"),
        ("w.pth.tar", b"\x80\x04garbage", "not a plain tensor checkpoint"),
    ],
)
def test_corrupt_weights_files_are_value_errors(tmp_path: Path, name, content, message) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message) as caught:
        load_weights_file(tmp_path / name)
    assert str(tmp_path / name) in str(caught.value) and "\n" not in str(caught.value)


def _resume(directory: Path) -> None:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    load_checkpoint(directory, model, optimizer, TrainConfig(), 0, 1, torch.device("cpu"))


def test_corrupt_checkpoint_state_is_one_input_error(tmp_path: Path) -> None:
    files = CheckpointFiles(str(tmp_path))
    Path(files.state).write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(InputError, match="state.pt is not a readable checkpoint file"):
        _resume(tmp_path)


def test_corrupt_checkpoint_model_is_one_input_error(tmp_path: Path) -> None:
    files = CheckpointFiles(str(tmp_path))
    config = TrainConfig()
    state = {"config": {k: getattr(config, k) for k in vars(config)}, "world_size": 1}
    torch.save(state, files.state)
    Path(files.model).write_bytes(b"\xff" * 64)
    with pytest.raises(InputError, match="model.safetensors is not a readable safetensors"):
        _resume(tmp_path)
    save_file({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}, files.model)  # a good one
