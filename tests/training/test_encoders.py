"""Tests for training.encoders: the DESIGN "Encoders" rules (local weights only, 128-d head).

torchvision is not installed, so torchvision-layout ResNet checkpoints are built here from its
naming rules, and a functional torchvision-semantics forward checks the converted weights.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel

from tests.training.torchvision_resnet import (
    RESNET50,
    TINY_RESNET,
    moco_checkpoint,
    torchvision_forward,
    torchvision_resnet_state,
)
from training.backbone_weights import convert_torchvision_resnet, load_weights_file
from training.encoders import (
    CLIP_MEAN,
    ENCODERS,
    IMAGENET_STD,
    HierEncoder,
    build_encoder,
    encoder_state,
    load_encoder,
    save_encoder,
)
from training.geometry import lorentz_distance, lorentz_inner

pytestmark = pytest.mark.usefixtures("no_network")

TINY = ("tiny-vit", "tiny-resnet")
# A ViT small enough to save and reload in milliseconds, and unlike tiny-vit's default config.
SMALL_CLIP = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 32,
    "patch_size": 8,
}


def pixels(batch: int = 4, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def pooled(encoder: HierEncoder, images: torch.Tensor) -> torch.Tensor:
    return encoder.backbone(pixel_values=images).pooler_output.flatten(1)


# --- names, shapes, head -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vit-h14", "resnet101", ""])
def test_unknown_encoder_name_is_a_value_error(name):
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder(name)


def test_unknown_geometry_is_a_value_error():
    with pytest.raises(ValueError, match="geometry"):
        build_encoder("tiny-vit", geometry="spherical")


@pytest.mark.parametrize("geometry", ["lorentz", "euclidean"])
@pytest.mark.parametrize("name", TINY)
def test_head_projects_pooled_features_to_embed_dim(name, geometry):
    torch.manual_seed(0)
    encoder = build_encoder(name, geometry=geometry).eval()
    images = pixels(size=encoder.image_size)
    with torch.no_grad():
        out = encoder(images)
        projected = encoder.projection(pooled(encoder, images))
    assert out.shape == (4, 128) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    if geometry == "euclidean":
        torch.testing.assert_close(out, projected)
        assert encoder.curv is None and encoder.alpha is None
    else:
        # exp_map0 keeps the direction of alpha * proj(features).
        cosine = F.cosine_similarity(out, projected, dim=-1)
        torch.testing.assert_close(cosine, torch.ones(4))


@pytest.mark.parametrize("name", TINY)
def test_tiny_encoders_are_small_and_take_64_pixels(name):
    encoder = build_encoder(name)
    backbone_params = sum(p.numel() for p in encoder.backbone.parameters())
    assert 100_000 <= backbone_params <= 1_000_000
    assert encoder.image_size == 64 and encoder.embed_dim == 128


def test_big_encoders_have_the_published_sizes():
    # Built on the meta device: shapes only, no 100M-parameter init in a unit test.
    with torch.device("meta"):
        vit, resnet = build_encoder("clip-vit-b16"), build_encoder("resnet50")
    # OpenAI CLIP ViT-B/16 image tower without its 768x512 projection; torchvision ResNet-50
    # without its 2048x1000 fc.
    assert sum(p.numel() for p in vit.backbone.parameters()) == 85_799_424
    assert sum(p.numel() for p in resnet.backbone.parameters()) == 23_508_032
    assert vit.projection.weight.shape == (128, 768)
    assert resnet.projection.weight.shape == (128, 2048)
    assert (vit.image_size, resnet.image_size) == (224, 224)
    assert vit.image_mean == CLIP_MEAN and resnet.image_std == IMAGENET_STD


def test_lorentz_outputs_lie_on_the_hyperboloid_at_distance_alpha_times_projection():
    torch.manual_seed(0)
    encoder = build_encoder("tiny-resnet", geometry="lorentz").eval()
    with torch.no_grad():
        encoder.log_curv.fill_(math.log(2.5))
        images = pixels()
        out = encoder(images).double()
        tangent = (encoder.alpha * encoder.projection(pooled(encoder, images))).double()
    curv = 2.5
    origin = torch.zeros_like(out)
    # Geodesic distance from the origin through geometry's time component: acosh(-c <o, x>_L).
    distance = torch.acosh(-curv * lorentz_inner(origin, out, curv)) / math.sqrt(curv)
    torch.testing.assert_close(distance, tangent.norm(dim=-1))
    torch.testing.assert_close(lorentz_inner(out, out, curv), torch.full((4,), -1 / curv).double())


def test_curvature_and_scale_start_at_meru_values():
    encoder = build_encoder("tiny-vit", embed_dim=64)
    assert encoder.curv.item() == pytest.approx(1.0)
    assert encoder.alpha.item() == pytest.approx(64**-0.5)


def test_start_radius_scales_the_initial_embedding_radius():
    torch.manual_seed(0)
    images = pixels(batch=16)
    radii = {}
    for start in (1.0, 0.25):
        torch.manual_seed(1)
        encoder = build_encoder("tiny-vit", embed_dim=64, start_radius=start).eval()
        assert encoder.alpha.item() == pytest.approx(start * 64**-0.5)
        with torch.no_grad():
            radii[start] = lorentz_distance(encoder(images), torch.zeros(16, 64), 1.0)
    # Same weights, alpha divided by 4: every tangent vector, hence radius, is 4 times shorter.
    torch.testing.assert_close(radii[0.25], radii[1.0] / 4, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="start_radius"):
        build_encoder("tiny-vit", embed_dim=64, start_radius=100.0)


@pytest.mark.parametrize(
    "log_curv, log_alpha, curv, alpha",
    [(5.0, 2.0, 10.0, 1.0), (-10.0, -20.0, 0.1, 1e-3), (math.log(3.0), -1.0, 3.0, math.exp(-1))],
)
def test_curvature_and_scale_are_clamped(log_curv, log_alpha, curv, alpha):
    encoder = build_encoder("tiny-resnet")
    with torch.no_grad():
        encoder.log_curv.fill_(log_curv)
        encoder.log_alpha.fill_(log_alpha)
    assert encoder.curv.item() == pytest.approx(curv, rel=1e-5)
    assert encoder.alpha.item() == pytest.approx(alpha, rel=1e-5)
    out = encoder(pixels(batch=2, size=32))
    # Forward pulls overshooting logs back to the bound, where the clamp still passes gradient.
    assert encoder.log_curv.item() == pytest.approx(math.log(curv), abs=1e-6)
    out.square().sum().backward()
    assert encoder.log_curv.grad.abs().item() > 0 and encoder.log_alpha.grad.abs().item() > 0


def test_euclidean_encoder_has_no_unused_parameters():
    # DDP (find_unused_parameters=False) fails on parameters that get no gradient.
    encoder = build_encoder("tiny-vit", geometry="euclidean")
    encoder(pixels(batch=2)).sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())
    assert not hasattr(encoder, "log_curv")


# --- CLIP from a local folder ------------------------------------------------------------------


@pytest.mark.parametrize("geometry", ["lorentz", "euclidean"])
def test_clip_loads_from_a_local_save_pretrained_folder(tmp_path, geometry):
    torch.manual_seed(0)
    in_memory = CLIPVisionModel(CLIPVisionConfig(**SMALL_CLIP)).eval()
    in_memory.save_pretrained(tmp_path / "clip")
    loaded = build_encoder("clip-vit-b16", weights=str(tmp_path / "clip"), geometry=geometry)
    reference = HierEncoder(in_memory, "clip-vit-b16", geometry=geometry)
    reference.projection.load_state_dict(loaded.projection.state_dict())
    images = pixels(size=32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(images), reference.eval()(images))
    # The folder's config wins over the ViT-B/16 default.
    assert loaded.image_size == 32 and loaded.projection.weight.shape == (128, 32)
    assert loaded.image_mean == CLIP_MEAN


def test_clip_image_tower_loads_from_a_full_clip_folder(tmp_path):
    torch.manual_seed(0)
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
    clip = CLIPModel(
        CLIPConfig(text_config=text | {"num_attention_heads": 4}, vision_config=SMALL_CLIP)
    )
    clip.save_pretrained(tmp_path / "clip")
    encoder = build_encoder("tiny-vit", weights=tmp_path / "clip")
    expected = clip.vision_model.state_dict()
    for key, value in encoder.backbone.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


def test_clip_folder_with_missing_weights_is_refused(tmp_path):
    # from_pretrained alone would random-init the missing tensors and only log it.
    CLIPVisionModel(CLIPVisionConfig(**SMALL_CLIP)).save_pretrained(tmp_path / "clip")
    weights = load_file(tmp_path / "clip" / "model.safetensors")
    save_file(
        {k: v for k, v in weights.items() if "post_layernorm" not in k},
        tmp_path / "clip" / "model.safetensors",
    )
    with pytest.raises(ValueError, match=r"does not hold a CLIPVisionModel.*post_layernorm"):
        build_encoder("tiny-vit", weights=tmp_path / "clip")


def test_clip_from_a_single_file_is_refused(tmp_path):
    path = tmp_path / "vit.safetensors"
    save_file({"x": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="save_pretrained folder"):
        build_encoder("clip-vit-b16", weights=path)


# --- ResNet: torchvision / MoCo-v2 checkpoints -------------------------------------------------


def test_resnet50_torchvision_layout_loads_strictly():
    state = torchvision_resnet_state(**RESNET50)
    assert len(state) == 320  # torchvision resnet50().state_dict() has 320 entries with fc
    with torch.device("meta"):
        model = build_encoder("resnet50").backbone
    converted = convert_torchvision_resnet(state)
    assert len(converted) == 318
    model.load_state_dict(converted, strict=True, assign=True)
    torch.testing.assert_close(
        model.encoder.stages[2].layers[5].layer[1].convolution.weight,
        state["layer3.5.conv2.weight"],
    )


@pytest.mark.parametrize("layout", ["moco.pth.tar", "torchvision.pth", "module.pt", "safetensors"])
def test_resnet_checkpoint_gives_torchvision_outputs(tmp_path, layout):
    query_state = torchvision_resnet_state(**TINY_RESNET, seed=1)
    if layout == "moco.pth.tar":
        path = tmp_path / "moco_v2_800ep_pretrain.pth.tar"
        torch.save(
            moco_checkpoint(query_state, torchvision_resnet_state(**TINY_RESNET, seed=2)), path
        )
    elif layout == "torchvision.pth":
        path = tmp_path / "resnet.pth"
        torch.save(query_state, path)
    elif layout == "module.pt":
        path = tmp_path / "resnet.pt"
        torch.save({"state_dict": {f"module.{k}": v for k, v in query_state.items()}}, path)
    else:
        path = tmp_path / "resnet.safetensors"
        save_file(query_state, path)
    encoder = build_encoder("tiny-resnet", weights=str(path), geometry="euclidean").eval()
    images = pixels(batch=2, size=32)
    with torch.no_grad():
        expected = torchvision_forward(query_state, images, TINY_RESNET["depths"])
        torch.testing.assert_close(pooled(encoder, images), expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(
            encoder(images), encoder.projection(expected), rtol=1e-4, atol=1e-5
        )


# --- local files only, never unpickle ----------------------------------------------------------


@pytest.mark.parametrize(
    "name, weights", [("resnet50", "missing.pth.tar"), ("clip-vit-b16", "missing_folder")]
)
def test_missing_weights_are_a_one_line_file_not_found_error(tmp_path, name, weights):
    with pytest.raises(FileNotFoundError) as error:
        build_encoder(name, weights=str(tmp_path / weights))
    assert "\n" not in str(error.value) and weights in str(error.value)


def test_missing_files_are_file_not_found_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_weights_file(tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "absent.safetensors")


# --- save / load the whole encoder -------------------------------------------------------------


@pytest.mark.parametrize("name, geometry", [("tiny-vit", "lorentz"), ("tiny-resnet", "euclidean")])
def test_saved_encoder_reloads_identically(tmp_path, name, geometry):
    torch.manual_seed(0)
    encoder = build_encoder(name, geometry=geometry, embed_dim=32)
    if geometry == "lorentz":
        with torch.no_grad():
            encoder.log_curv.fill_(math.log(2.0))
    path = tmp_path / "encoder.safetensors"
    save_encoder(encoder, path)
    loaded = load_encoder(path, name, geometry=geometry, embed_dim=32)
    images = pixels()
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(images), encoder.eval()(images), rtol=0, atol=0)
    if geometry == "lorentz":
        assert loaded.curv.item() == pytest.approx(2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.safetensors"]


def test_saved_encoder_keeps_a_non_default_backbone_config(tmp_path):
    CLIPVisionModel(CLIPVisionConfig(**SMALL_CLIP)).save_pretrained(tmp_path / "clip")
    encoder = build_encoder("clip-vit-b16", weights=tmp_path / "clip")
    save_encoder(encoder, tmp_path / "encoder.safetensors")
    loaded = load_encoder(tmp_path / "encoder.safetensors")
    assert loaded.name == "clip-vit-b16" and loaded.image_size == 32
    for key, value in encoder_state(encoder).items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)


def test_load_encoder_refuses_mismatches_and_foreign_files(tmp_path):
    path = tmp_path / "encoder.safetensors"
    save_encoder(build_encoder("tiny-vit"), path)
    with pytest.raises(ValueError, match="name='tiny-vit'"):
        load_encoder(path, "tiny-resnet")
    with pytest.raises(ValueError, match="geometry"):
        load_encoder(path, geometry="euclidean")
    foreign = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, foreign)
    with pytest.raises(ValueError, match="save_encoder"):
        load_encoder(foreign)


def test_encoder_state_unwraps_ddp_module():
    encoder = build_encoder("tiny-resnet")
    wrapper = torch.nn.Module()
    wrapper.module = encoder
    state = encoder_state(wrapper)
    assert state.keys() == encoder.state_dict().keys() and "log_curv" in state


def test_every_encoder_name_is_buildable_on_meta():
    with torch.device("meta"):
        built = [build_encoder(name).name for name in ENCODERS]
    assert built == list(ENCODERS)
