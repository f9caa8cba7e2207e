"""Tests for training.images: letterboxing a JPEG crop and the batched normalisation and
augmentation.
"""

import io

import numpy as np
import torch
from PIL import Image

from training.images import Augment, letterbox, mean_colour


def test_letterbox_keeps_aspect_ratio_and_fills_with_the_mean_colour():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(buffer, "JPEG", quality=95)
    square = letterbox(buffer.getvalue(), 16, (10, 20, 30))
    assert square.shape == (16, 16, 3) and square.dtype == np.uint8
    # 40x20 -> 16x8, centred: rows 0-3 and 12-15 are fill, rows 4-11 red.
    np.testing.assert_array_equal(square[:4], np.broadcast_to([10, 20, 30], (4, 16, 3)))
    np.testing.assert_array_equal(square[12:], np.broadcast_to([10, 20, 30], (4, 16, 3)))
    assert (square[5:11, :, 0] > 230).all() and (square[5:11, :, 1:] < 30).all()


def test_augment_normalises_in_eval_and_randomises_in_training():
    mean, std = (0.5, 0.25, 0.75), (0.2, 0.1, 0.3)
    pixels = torch.tensor(mean_colour(mean), dtype=torch.uint8)[None, :, None, None]
    pixels = pixels.expand(4, 3, 40, 40).contiguous()
    augment = Augment(32, mean, std).eval()
    plain = augment(pixels)
    assert plain.shape == (4, 3, 32, 32) and plain.dtype == torch.float32
    assert plain.abs().max() < 0.03  # the mean colour normalises to ~0
    varied = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    augment.train()
    torch.manual_seed(0)
    first = augment(varied)
    torch.manual_seed(0)
    again = augment(varied)
    assert torch.equal(first, again)  # seeded by torch's global RNG (checkpointed by train)
    assert not torch.allclose(first, augment.eval()(varied))
