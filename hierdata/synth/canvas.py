"""Drawing primitives for the synthetic photos: rectangles in pixels, a canvas with per-box
colour jitter, and the shared texture tiles that blend a surface's two colours.
"""

import functools
import math
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

# Texture tiles: synth.images' largest image (640 x 480) plus room for a random offset.
TILE = (704, 544)

Colour = tuple[int, int, int]
# Per image, not per box: faces match hands and eyes match (Canvas.skin, Canvas.iris).
SKIN: tuple[Colour, ...] = ((240, 200, 170), (210, 160, 120), (165, 115, 80), (110, 75, 50))
IRIS: tuple[Colour, ...] = ((110, 70, 30), (60, 120, 190), (70, 130, 70))


class Rect(NamedTuple):
    """A rectangle in pixels; x0 > x1 mirrors it, so `sub` then draws the shape flipped."""

    x0: float
    y0: float
    x1: float
    y1: float

    def sub(self, a: float, b: float, c: float, d: float) -> "Rect":
        """The part from fraction a to b across and c to d down (synth's x0, x1, y0, y1)."""
        return Rect(*self.pt(a, c), *self.pt(b, d))

    def pt(self, fx: float, fy: float) -> tuple[float, float]:
        return self.x0 + fx * (self.x1 - self.x0), self.y0 + fy * (self.y1 - self.y0)

    @property
    def xy(self) -> list[float]:
        """[left, top, right, bottom] for PIL, whichever way the rectangle is mirrored."""
        return [min(self.x0, self.x1), self.y0, max(self.x0, self.x1), self.y1]

    @property
    def side(self) -> float:
        return min(abs(self.x1 - self.x0), self.y1 - self.y0)

    def disc(self, scale: float = 1.0) -> "Rect":
        """The centred square of side `scale` x the shorter side: discs stay round."""
        (cx, cy), half = self.pt(0.5, 0.5), scale * self.side / 2
        return Rect(cx - half, cy - half, cx + half, cy + half)

    def mirrored(self) -> "Rect":
        return Rect(self.x1, self.y0, self.x0, self.y1)


Shape = str | list[tuple[float, float]]  # "rect" | "ellipse" | "rounded" | polygon in fractions


def _outline(draw: ImageDraw.ImageDraw, r: Rect, shape: Shape, fill, outline=None, width=1):
    """Draw `shape` filling `r` on `draw` (the image itself, or a mask when texturing)."""
    if shape == "ellipse":
        draw.ellipse(r.xy, fill, outline, width)
    elif shape == "rect":
        draw.rectangle(r.xy, fill, outline, width)
    elif shape == "rounded":
        draw.rounded_rectangle(r.xy, r.side * 0.22, fill, outline, width)
    else:
        draw.polygon([r.pt(fx, fy) for fx, fy in shape], fill, outline, width)


class Canvas:
    """One image being drawn: the picture, a draw handle on it, and the image's generator."""

    def __init__(self, img: Image.Image, rng: np.random.Generator) -> None:
        self.img, self.draw, self.rng = img, ImageDraw.Draw(img), rng
        # One skin tone and iris colour per image, so faces match hands and eyes match.
        self.skin, self.iris = self.pick(SKIN, 0.05), self.pick(IRIS)

    def pick(self, palette: tuple[Colour, ...], spread: float = 0.12) -> Colour:
        """A palette colour with per-channel jitter: the same label differs between boxes."""
        base = np.asarray(palette[self.rng.integers(len(palette))], float)
        jitter = base * self.rng.uniform(1 - spread, 1 + spread, 3) + self.rng.uniform(-8, 8)
        return tuple(int(v) for v in np.clip(jitter, 0, 255))

    def width(self, r: Rect, fraction: float = 0.06) -> int:
        """An outline width in pixels, proportional to the rectangle, at least one."""
        return max(1, round(fraction * r.side))

    def shape(self, r: Rect, shape: Shape, fill, outline=None, width=1, texture=None) -> None:
        """Fill `shape` in `r` with colour `fill` and draw its outline; texture (pattern name,
        second colour) blends the two colours by that pattern instead of a flat fill."""
        if texture is not None:
            left, top = int(r.xy[0]), int(r.xy[1])
            w, h = max(1, math.ceil(r.xy[2]) - left + 1), max(1, math.ceil(r.xy[3]) - top + 1)
            pattern, second = texture
            ox = int(self.rng.integers(0, TILE[0] - w + 1)) if w < TILE[0] else 0
            oy = int(self.rng.integers(0, TILE[1] - h + 1)) if h < TILE[1] else 0
            tile = patterns()[pattern].crop((ox, oy, ox + w, oy + h))
            surface = Image.composite(
                Image.new("RGB", (w, h), second), Image.new("RGB", (w, h), fill), tile
            )
            mask = Image.new("L", (w, h), 0)
            local = Rect(r.x0 - left, r.y0 - top, r.x1 - left, r.y1 - top)
            _outline(ImageDraw.Draw(mask), local, shape, 255)
            self.img.paste(surface, (left, top), mask)
            fill = None
        if fill is not None or outline is not None:
            _outline(self.draw, r, shape, fill, outline, width)


def shade(colour, factor: float = 1.0) -> Colour:
    """`colour` times `factor`, as ints clipped to [0, 255]."""
    return tuple(int(min(255, max(0, c * factor))) for c in colour)


@functools.cache
def patterns() -> dict[str, Image.Image]:
    """Grey-level tiles (TILE) that blend a surface's two colours, 0 all first, 255 all second;
    made once per process from a fixed generator, so every process draws the same pixels."""
    rng = np.random.default_rng(20240917)
    w, h = TILE
    y, x = np.mgrid[0:h, 0:w]

    def smooth(cell: int) -> np.ndarray:  # value noise in [0, 1], features ~cell pixels
        coarse = (rng.random((h // cell + 2, w // cell + 2)) * 255).astype(np.uint8)
        return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), float) / 255

    fine, blotch = rng.random((h, w)), smooth(24)
    brick_row, shingle_row = y // 12, y // 9
    tiles = {
        "noise": 0.75 * blotch + 0.25 * fine,
        "clouds": np.clip((smooth(48) - 0.55) * 3, 0, 1) * 0.9,
        "grain": 0.5 + 0.35 * np.sin(y / 2.5 + 9 * smooth(40)) + 0.15 * fine - 0.1,
        "bricks": np.maximum((y % 12 < 2), ((x + 14 * (brick_row % 2)) % 28 < 2)) * 0.8
        + 0.2 * fine,
        "shingles": np.maximum(y % 9 < 2, (x + 8 * (shingle_row % 2)) % 16 < 2) * 0.7
        + 0.3 * blotch,
        "checks": ((x // 14 + y // 14) % 2) * 0.9 + 0.1 * fine,
        "stripes": (x % 26 < 9) * 0.55 + 0.3 * blotch,
        "planks": np.maximum(y % 22 < 2, (x + 97 * (y // 22)) % 150 < 2) * 0.7
        + 0.3 * (0.5 + 0.5 * np.sin(y / 1.7 + 6 * blotch)),
        "gloss": np.clip(np.abs(y % 120 - 60) / 60 * 0.8 + 0.2 * blotch, 0, 1),
    }
    return {k: Image.fromarray(np.clip(v * 255, 0, 255).astype(np.uint8)) for k, v in tiles.items()}
