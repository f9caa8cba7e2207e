"""Image preprocessing shared by training and evaluation: JPEG crops letterboxed to the
encoder's square, and batched normalisation and augmentation on the device (kornia).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import kornia.augmentation as K
import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn


def letterbox(jpeg: bytes, size: int, fill: tuple[int, int, int]) -> np.ndarray:
    """Decode a JPEG and fit it, aspect ratio kept, in a ``size`` x ``size`` square.

    The longer side is scaled to ``size`` (small crops are upscaled), the image centred and the
    borders filled with ``fill`` (the encoder's mean colour, so padding normalises to zero).
    Letterboxing, unlike a centre crop, keeps every part of a box in view.

    Returns:
        (size, size, 3) uint8 RGB.
    """
    with Image.open(io.BytesIO(jpeg)) as image:
        longest = max(image.size)
        # JPEG DCT scaling decodes at 1/2, 1/4 or 1/8 when the result stays >= the target size.
        image.draft("RGB", tuple(max(1, -(-size * side // longest)) for side in image.size))
        image = image.convert("RGB")
        scale = size / max(image.size)
        width, height = (max(1, min(size, round(side * scale))) for side in image.size)
        canvas = Image.new("RGB", (size, size), fill)
        resized = image.resize((width, height), Image.Resampling.BILINEAR)
        canvas.paste(resized, ((size - width) // 2, (size - height) // 2))
        return np.asarray(canvas)


class Augment(nn.Module):
    """Batched augmentation and normalisation of uint8 crops, with kornia, on their device.

    Training mode (``augment=True``): horizontal and vertical flips (p 0.5 each), rotation by a
    uniform angle in [-15, 15] degrees, colour jitter brightness/contrast/saturation 0.2 and hue
    0.1, Gaussian blur with a 5x5 kernel and sigma in [0.1, 2] (p 0.5); each crop draws its own
    parameters from torch's global RNG. Resizing to the encoder's size comes first (a no-op when
    the loader already letterboxed to it), so the random ops run on the smallest images. Eval
    mode (or ``augment=False``) only resizes and normalises.

    Args:
        image_size: the encoder's input side S.
        mean, std: the encoder's per-channel normalisation, for pixels in [0, 1].
        augment: apply the random ops in training mode.
    """

    def __init__(
        self, image_size: int, mean: Sequence[float], std: Sequence[float], augment: bool = True
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.resize = K.Resize((image_size, image_size), antialias=True)
        self.random = (
            nn.Sequential(
                K.RandomHorizontalFlip(p=0.5),
                K.RandomVerticalFlip(p=0.5),
                K.RandomRotation(15.0, p=1.0),
                K.ColorJitter(0.2, 0.2, 0.2, 0.1, p=1.0),
                K.RandomGaussianBlur((5, 5), (0.1, 2.0), p=0.5),
            )
            if augment
            else None
        )
        self.normalize = K.Normalize(torch.tensor(mean), torch.tensor(std))

    def forward(self, pixels: Tensor) -> Tensor:
        """(N, 3, H, W) uint8 -> (N, 3, S, S) float32, normalised."""
        images = pixels.float() / 255.0
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = self.resize(images)
        if self.random is not None and self.training:
            # Rotation and blur can overshoot [0, 1] slightly; jitter expects that range.
            images = self.random(images).clamp(0.0, 1.0)
        return self.normalize(images)


def mean_colour(mean: Sequence[float]) -> tuple[int, int, int]:
    """The encoder's mean as 0-255 RGB: the letterbox fill that normalises to zero."""
    r, g, b = (int(round(255 * m)) for m in mean)
    return r, g, b
