"""torchvision-layout ResNet state dicts and forward pass, built from torchvision's naming
rules (torchvision is not installed), for the backbone-weight and encoder tests.
"""

import re

import torch
import torch.nn.functional as F

# The tiny-resnet config in torchvision terms: stem channels, per-stage widths ("planes"), depths.
TINY_RESNET = {"stem": 16, "widths": (8, 16, 32, 64), "depths": (1, 1, 1, 1)}
RESNET50 = {"stem": 64, "widths": (64, 128, 256, 512), "depths": (3, 4, 6, 3)}


def torchvision_resnet_state(stem, widths, depths, seed=0) -> dict[str, torch.Tensor]:
    """Random bottleneck ResNet state dict named and shaped as torchvision's (with its fc head)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}

    def conv(name, out_channels, in_channels, kernel):
        shape = (out_channels, in_channels, kernel, kernel)
        scale = (2.0 / (in_channels * kernel * kernel)) ** 0.5
        state[f"{name}.weight"] = torch.randn(shape, generator=generator) * scale

    def batch_norm(name, channels):
        state[f"{name}.weight"] = 1 + 0.1 * torch.randn(channels, generator=generator)
        state[f"{name}.bias"] = 0.1 * torch.randn(channels, generator=generator)
        state[f"{name}.running_mean"] = 0.1 * torch.randn(channels, generator=generator)
        state[f"{name}.running_var"] = 0.5 + torch.rand(channels, generator=generator)
        state[f"{name}.num_batches_tracked"] = torch.tensor(7)

    conv("conv1", stem, 3, 7)
    batch_norm("bn1", stem)
    in_channels = stem
    for stage, (width, depth) in enumerate(zip(widths, depths, strict=True), start=1):
        for block in range(depth):
            prefix = f"layer{stage}.{block}"
            conv(f"{prefix}.conv1", width, in_channels, 1)
            batch_norm(f"{prefix}.bn1", width)
            conv(f"{prefix}.conv2", width, width, 3)
            batch_norm(f"{prefix}.bn2", width)
            conv(f"{prefix}.conv3", 4 * width, width, 1)
            batch_norm(f"{prefix}.bn3", 4 * width)
            if block == 0:
                conv(f"{prefix}.downsample.0", 4 * width, in_channels, 1)
                batch_norm(f"{prefix}.downsample.1", 4 * width)
            in_channels = 4 * width
    state["fc.weight"] = torch.randn(10, in_channels, generator=generator)
    state["fc.bias"] = torch.randn(10, generator=generator)
    return state


def torchvision_forward(state, images, depths) -> torch.Tensor:
    """torchvision ResNet v1.5 (eval mode) pooled features from a torchvision-keyed state dict."""

    def batch_norm(name, hidden):
        return F.batch_norm(
            hidden,
            state[f"{name}.running_mean"],
            state[f"{name}.running_var"],
            state[f"{name}.weight"],
            state[f"{name}.bias"],
            training=False,
            eps=1e-5,
        )

    hidden = F.relu(batch_norm("bn1", F.conv2d(images, state["conv1.weight"], stride=2, padding=3)))
    hidden = F.max_pool2d(hidden, kernel_size=3, stride=2, padding=1)
    for stage, depth in enumerate(depths, start=1):
        for block in range(depth):
            prefix = f"layer{stage}.{block}"
            stride = 2 if stage > 1 and block == 0 else 1
            out = F.relu(
                batch_norm(f"{prefix}.bn1", F.conv2d(hidden, state[f"{prefix}.conv1.weight"]))
            )
            out = F.conv2d(out, state[f"{prefix}.conv2.weight"], stride=stride, padding=1)
            out = F.relu(batch_norm(f"{prefix}.bn2", out))
            out = batch_norm(f"{prefix}.bn3", F.conv2d(out, state[f"{prefix}.conv3.weight"]))
            if block == 0:
                shortcut = F.conv2d(hidden, state[f"{prefix}.downsample.0.weight"], stride=stride)
                hidden = batch_norm(f"{prefix}.downsample.1", shortcut)
            hidden = F.relu(out + hidden)
    return hidden.mean(dim=(2, 3))


def hf_to_torchvision_key(key: str) -> str:
    """Inverse of the documented mapping, written independently of the module's regex."""
    stem = {"embedder.embedder.convolution": "conv1", "embedder.embedder.normalization": "bn1"}
    for hf_prefix, torchvision_prefix in stem.items():
        if key.startswith(hf_prefix + "."):
            return torchvision_prefix + key[len(hf_prefix) :]
    match = re.fullmatch(
        r"encoder\.stages\.(\d)\.layers\.(\d+)\.(?:layer\.(\d)|shortcut)\.(convolution|normalization)\.(\w+)",
        key,
    )
    stage, block, conv, kind, param = match.groups()
    if conv is None:
        module = "downsample.0" if kind == "convolution" else "downsample.1"
    else:
        module = f"{'conv' if kind == 'convolution' else 'bn'}{int(conv) + 1}"
    return f"layer{int(stage) + 1}.{block}.{module}.{param}"


def moco_checkpoint(query_state, key_state) -> dict:
    """A MoCo-v2 main_moco.py checkpoint: DDP + query/key encoders, MLP head, queue, optimizer."""
    state = {f"module.encoder_q.{k}": v for k, v in query_state.items() if not k.startswith("fc.")}
    state |= {f"module.encoder_k.{k}": v for k, v in key_state.items() if not k.startswith("fc.")}
    for encoder in ("encoder_q", "encoder_k"):
        state[f"module.{encoder}.fc.0.weight"] = torch.randn(256, 256)
        state[f"module.{encoder}.fc.2.weight"] = torch.randn(128, 256)
    state["module.queue"] = torch.randn(128, 32)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    optimizer = {"state": {}, "param_groups": [{"lr": 0.03, "momentum": 0.9, "params": [0, 1]}]}
    return {"epoch": 200, "arch": "resnet50", "state_dict": state, "optimizer": optimizer}
