"""Tests for training.eval.models: zero-shot embeds as the backbone was pre-trained (CLIP's
projected image embedding, a ResNet's pooled features) and says which.
"""

import torch
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel

from training.eval.models import zero_shot

SMALL_CLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "image_size": 32, "patch_size": 16}  # fmt: skip
CPU = torch.device("cpu")


def _pixels(size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8)


def test_clip_zero_shot_is_clips_projected_image_embedding(tmp_path):
    torch.manual_seed(0)
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 4}  # fmt: skip
    config = CLIPConfig(text_config=text, vision_config=SMALL_CLIP, projection_dim=24)
    clip = CLIPModel(config).eval()
    clip.save_pretrained(tmp_path / "clip")
    model = zero_shot("tiny-vit", str(tmp_path / "clip"), seed=0, device=CPU)
    pixels = _pixels()
    with torch.no_grad():
        expected = clip.get_image_features(pixel_values=model.normalize(pixels))
    expected = getattr(expected, "pooler_output", expected)  # a tensor, or an output object
    torch.testing.assert_close(model.embed_pixels(pixels), expected)
    assert model.embed_pixels(pixels).shape == (3, 24)
    assert "visual_projection" in model.description["features"]


def test_vision_only_clip_folder_falls_back_to_the_pooled_output_and_says_so(tmp_path):
    torch.manual_seed(0)
    vision = CLIPVisionModel(CLIPVisionConfig(**SMALL_CLIP)).eval()
    vision.save_pretrained(tmp_path / "clip")
    model = zero_shot("tiny-vit", str(tmp_path / "clip"), seed=0, device=CPU)
    pixels = _pixels()
    with torch.no_grad():
        expected = vision(pixel_values=model.normalize(pixels)).pooler_output
    torch.testing.assert_close(model.embed_pixels(pixels), expected)
    assert model.description["features"] == "pooled output (the folder has no visual_projection)"


def test_resnet_zero_shot_is_the_pooled_feature_and_random_init_is_seeded():
    model = zero_shot("tiny-resnet", None, seed=3, device=CPU)
    assert model.description["features"] == "pooled output (ResNet)"
    assert model.embed_pixels(_pixels(64)).shape == (3, 256)
    again = zero_shot("tiny-resnet", None, seed=3, device=CPU)
    pixels = _pixels(64)
    torch.testing.assert_close(model.embed_pixels(pixels), again.embed_pixels(pixels))
    assert model.fingerprint == again.fingerprint and "random-init:seed=3" in model.fingerprint
    tiny_vit = zero_shot("tiny-vit", None, seed=0, device=CPU)
    assert tiny_vit.description["features"].startswith("CLIP image embedding")
