"""Tests for training.backbone_weights: weights-only loading of local checkpoint files and the
torchvision ResNet key map (DESIGN "Encoders": local weights only, never unpickle code).
"""

import os
import pickle

import pytest
import torch

from tests.training.torchvision_resnet import (
    TINY_RESNET,
    hf_to_torchvision_key,
    torchvision_resnet_state,
)
from training.backbone_weights import convert_torchvision_resnet, load_weights_file
from training.encoders import build_encoder

pytestmark = pytest.mark.usefixtures("no_network")


def test_resnet_converter_round_trips_with_strict_loading():
    model = build_encoder("tiny-resnet").backbone
    hf_state = model.state_dict()
    torchvision_state = {hf_to_torchvision_key(key): value for key, value in hf_state.items()}
    assert "layer1.0.downsample.1.running_mean" in torchvision_state
    converted = convert_torchvision_resnet(torchvision_state)
    assert converted.keys() == hf_state.keys()
    assert all(converted[key] is hf_state[key] for key in hf_state)
    model.load_state_dict(converted, strict=True)


def test_resnet_converter_lists_unmapped_keys():
    state = torchvision_resnet_state(**TINY_RESNET)
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    state["layer1.0.conv1.bias"] = torch.zeros(1)  # torchvision convs have no bias
    with pytest.raises(ValueError, match=r"2 checkpoint keys.*layer5\.0\.conv1\.weight"):
        convert_torchvision_resnet(state)


def test_resnet_converter_refuses_two_keys_for_one_parameter():
    state = torchvision_resnet_state(**TINY_RESNET)
    state["module.conv1.weight"] = state["conv1.weight"]
    with pytest.raises(ValueError, match="embedder.embedder.convolution.weight"):
        convert_torchvision_resnet(state)


def test_unknown_weight_suffix_is_refused(tmp_path):
    path = tmp_path / "weights.pkl"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="safetensors"):
        load_weights_file(path)


class Payload:
    """Unpickling this runs a shell command that writes the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_checkpoint_is_refused(tmp_path, writer):
    armed = tmp_path / "armed"
    pickle.loads(pickle.dumps(Payload(armed)))
    assert armed.exists(), "the payload must really run when unpickled"
    marker = tmp_path / "pwned"
    checkpoint = {"state_dict": {"conv1.weight": torch.zeros(1), "evil": Payload(marker)}}
    path = tmp_path / "moco.pth.tar"
    if writer == "torch.save":
        torch.save(checkpoint, path)
    else:
        path.write_bytes(pickle.dumps(checkpoint, protocol=2))
    with pytest.raises(ValueError, match="refusing"):
        load_weights_file(path)
    with pytest.raises(ValueError, match="refusing"):
        build_encoder("tiny-resnet", weights=path)
    assert not marker.exists()


def test_checkpoint_entries_must_be_tensors(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"conv1.weight": torch.zeros(1), "epoch": 3}, path)
    with pytest.raises(ValueError, match="epoch"):
        load_weights_file(path)
