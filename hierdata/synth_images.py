"""Synthetic photos for the synthetic demo dataset: one JPEG per image of `hierdata.synth`.

A scene background per scene kind, and each label drawn inside its box as its own shape, colours
and texture, parents before parts, so every crop shows a distinct thing.
"""

import contextlib
import functools
import hashlib
import itertools
import math
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from multiprocessing import get_context
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from hierdata import io, synth

_WIDTH, _HEIGHT = (320, 640), (240, 480)  # pixels, inclusive
_ASPECT = (0.62, 0.80)  # height / width, like landscape photos
_TILE = (704, 544)  # texture tiles: the largest image plus room for a random offset
_GRAIN_MEAN = 16  # the sensor-noise tile is centred here, so add() can darken as well
_CHUNK = 32  # images per task when rendering in worker processes
# Near-duplicate labels (synth's duplicate_iou boxes) are the same object seen again: drawn as
# an overlay on the object they duplicate, after it (sorted as if 1.25x smaller) rather than
# hidden under it; with no such twin (a distractor) the object is drawn first, then the overlay.
_OVERLAYS = {"Tablecloth": "Table", "Desk": "Table", "Coach": "Bus"}
_TWIN_IOU = 0.9  # DESIGN's duplicate_iou default; synth's near-duplicates have IoU >= 0.92

Colour = tuple[int, int, int]
_CARS: tuple[Colour, ...] = ((180, 30, 35), (30, 70, 160), (190, 192, 196), (35, 35, 40))
_CARS += ((235, 235, 230), (40, 120, 60), (230, 190, 40))
_BUSES: tuple[Colour, ...] = ((240, 190, 30), (200, 40, 40), (40, 90, 170), (60, 140, 80))
_WALLS: tuple[Colour, ...] = ((225, 205, 165), (170, 80, 60), (240, 230, 150), (200, 215, 230))
_ROOFS: tuple[Colour, ...] = ((150, 50, 40), (100, 70, 50), (80, 85, 95), (170, 90, 50))
_DOORS: tuple[Colour, ...] = ((120, 70, 35), (150, 30, 35), (40, 90, 60), (40, 60, 120))
_WOOD: tuple[Colour, ...] = ((160, 110, 60), (120, 75, 40), (190, 150, 100), (95, 60, 35))
_SKIN: tuple[Colour, ...] = ((240, 200, 170), (210, 160, 120), (165, 115, 80), (110, 75, 50))
_IRIS: tuple[Colour, ...] = ((110, 70, 30), (60, 120, 190), (70, 130, 70))
_HAIR: tuple[Colour, ...] = ((40, 30, 25), (110, 70, 35), (200, 170, 100), (150, 60, 30))
_CLOTHES: tuple[Colour, ...] = ((200, 50, 50), (50, 100, 180), (60, 150, 90), (230, 230, 230))
_CLOTHES += ((240, 170, 40), (130, 60, 150), (60, 60, 70))
_TROUSERS: tuple[Colour, ...] = ((40, 50, 90), (60, 60, 60), (120, 100, 70), (20, 20, 25))
_BRIGHT: tuple[Colour, ...] = ((230, 40, 50), (40, 120, 230), (250, 200, 30), (230, 100, 200))
_FISH: tuple[Colour, ...] = ((250, 130, 20), (250, 210, 40), (220, 60, 60), (120, 200, 240))
_BIRDS: tuple[Colour, ...] = ((90, 60, 40), (40, 40, 45), (60, 110, 190), (200, 60, 40))
_FLAGS = (((0, 85, 164), (255, 255, 255), (239, 65, 53)), ((0, 0, 0), (221, 0, 0), (255, 206, 0)))
_FLAGS += (((0, 146, 70), (250, 250, 250), (206, 43, 55)), ((0, 90, 180), (250, 215, 0), (0, 0, 0)))
_GLASS, _DARK, _SILVER = (125, 185, 240), (30, 30, 34), (200, 202, 208)


class _Rect(NamedTuple):
    """A rectangle in pixels; x0 > x1 mirrors it, so `sub` then draws the shape flipped."""

    x0: float
    y0: float
    x1: float
    y1: float

    def sub(self, a: float, b: float, c: float, d: float) -> "_Rect":
        """The part from fraction a to b across and c to d down (synth's x0, x1, y0, y1)."""
        return _Rect(*self.pt(a, c), *self.pt(b, d))

    def pt(self, fx: float, fy: float) -> tuple[float, float]:
        return self.x0 + fx * (self.x1 - self.x0), self.y0 + fy * (self.y1 - self.y0)

    @property
    def xy(self) -> list[float]:
        """[left, top, right, bottom] for PIL, whichever way the rectangle is mirrored."""
        return [min(self.x0, self.x1), self.y0, max(self.x0, self.x1), self.y1]

    @property
    def side(self) -> float:
        return min(abs(self.x1 - self.x0), self.y1 - self.y0)

    def disc(self, scale: float = 1.0) -> "_Rect":
        """The centred square of side `scale` x the shorter side: discs stay round."""
        (cx, cy), half = self.pt(0.5, 0.5), scale * self.side / 2
        return _Rect(cx - half, cy - half, cx + half, cy + half)

    def mirrored(self) -> "_Rect":
        return _Rect(self.x1, self.y0, self.x0, self.y1)


Shape = str | list[tuple[float, float]]  # "rect" | "ellipse" | "rounded" | polygon in fractions


def _outline(draw: ImageDraw.ImageDraw, r: _Rect, shape: Shape, fill, outline=None, width=1):
    """Draw `shape` filling `r` on `draw` (the image itself, or a mask when texturing)."""
    if shape == "ellipse":
        draw.ellipse(r.xy, fill, outline, width)
    elif shape == "rect":
        draw.rectangle(r.xy, fill, outline, width)
    elif shape == "rounded":
        draw.rounded_rectangle(r.xy, r.side * 0.22, fill, outline, width)
    else:
        draw.polygon([r.pt(fx, fy) for fx, fy in shape], fill, outline, width)


class _Canvas:
    """One image being drawn: the picture, a draw handle on it, and the image's generator."""

    def __init__(self, img: Image.Image, rng: np.random.Generator) -> None:
        self.img, self.draw, self.rng = img, ImageDraw.Draw(img), rng
        # One skin tone and iris colour per image, so faces match hands and eyes match.
        self.skin, self.iris = self.pick(_SKIN, 0.05), self.pick(_IRIS)

    def pick(self, palette: tuple[Colour, ...], spread: float = 0.12) -> Colour:
        """A palette colour with per-channel jitter: the same label differs between boxes."""
        base = np.asarray(palette[self.rng.integers(len(palette))], float)
        jitter = base * self.rng.uniform(1 - spread, 1 + spread, 3) + self.rng.uniform(-8, 8)
        return tuple(int(v) for v in np.clip(jitter, 0, 255))

    def width(self, r: _Rect, fraction: float = 0.06) -> int:
        """An outline width in pixels, proportional to the rectangle, at least one."""
        return max(1, round(fraction * r.side))

    def shape(self, r: _Rect, shape: Shape, fill, outline=None, width=1, texture=None) -> None:
        """Fill `shape` in `r` with colour `fill` and draw its outline; texture (pattern name,
        second colour) blends the two colours by that pattern instead of a flat fill."""
        if texture is not None:
            left, top = int(r.xy[0]), int(r.xy[1])
            w, h = max(1, math.ceil(r.xy[2]) - left + 1), max(1, math.ceil(r.xy[3]) - top + 1)
            pattern, second = texture
            ox = int(self.rng.integers(0, _TILE[0] - w + 1)) if w < _TILE[0] else 0
            oy = int(self.rng.integers(0, _TILE[1] - h + 1)) if h < _TILE[1] else 0
            tile = _patterns()[pattern].crop((ox, oy, ox + w, oy + h))
            surface = Image.composite(
                Image.new("RGB", (w, h), second), Image.new("RGB", (w, h), fill), tile
            )
            mask = Image.new("L", (w, h), 0)
            local = _Rect(r.x0 - left, r.y0 - top, r.x1 - left, r.y1 - top)
            _outline(ImageDraw.Draw(mask), local, shape, 255)
            self.img.paste(surface, (left, top), mask)
            fill = None
        if fill is not None or outline is not None:
            _outline(self.draw, r, shape, fill, outline, width)


def _shade(colour, factor: float = 1.0) -> Colour:
    """`colour` times `factor`, as ints clipped to [0, 255]."""
    return tuple(int(min(255, max(0, c * factor))) for c in colour)


@functools.cache
def _patterns() -> dict[str, Image.Image]:
    """Grey-level tiles (_TILE) that blend a surface's two colours, 0 all first, 255 all second;
    made once per process from a fixed generator, so every process draws the same pixels."""
    rng = np.random.default_rng(20240917)
    w, h = _TILE
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


@functools.cache
def _grain() -> Image.Image:
    """RGB sensor noise, sd 5 around _GRAIN_MEAN, added to every photo at a random offset."""
    rng = np.random.default_rng(7)
    noise = rng.normal(_GRAIN_MEAN, 5, (_TILE[1], _TILE[0], 3))
    return Image.fromarray(np.clip(noise, 0, 2 * _GRAIN_MEAN).astype(np.uint8))


def _gradient(colours: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """An image whose rows go through `colours` (K, 3) top to bottom, linearly."""
    w, h = size
    t = np.linspace(0, len(colours) - 1, h)
    rows = np.stack([np.interp(t, np.arange(len(colours)), colours[:, c]) for c in range(3)], 1)
    return Image.fromarray(rows.astype(np.uint8)[:, None, :]).resize((w, h), Image.NEAREST)


def _background(scene: str, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Street: sky with clouds over a kerb and an asphalt road; room: a papered wall over a
    plank floor. The split line moves per image; colours are jittered."""
    w, h = size
    line = int(h * rng.uniform(0.45, 0.62))
    jitter = rng.uniform(0.88, 1.12, (2, 3))
    if scene == "street":
        top = np.array([[70, 120, 200], [170, 205, 235]]) * jitter[0]
        near = np.array([[150, 150, 150], [95, 95, 100], [70, 70, 75]]) * jitter[1]
        names, second = ("clouds", "noise"), (np.array([245, 245, 250]), near[0] * 0.75)
    else:
        top = np.array([[220, 200, 170], [200, 180, 150]]) * rng.permutation(jitter[0])
        near = np.array([[170, 120, 70], [140, 95, 55]]) * jitter[1]
        names, second = ("stripes", "planks"), (top[1] * 0.85, near[1] * 0.7)
    canvas = Image.new("RGB", size)
    for (y0, y1), colours, pattern, other in zip(
        ((0, line), (line, h)), (top, near), names, second, strict=True
    ):
        band = (w, y1 - y0)
        ox, oy = (int(rng.integers(0, t - s + 1)) for t, s in zip(_TILE, band, strict=True))
        mask = _patterns()[pattern].crop((ox, oy, ox + band[0], oy + band[1]))
        first = _gradient(np.clip(colours, 0, 255), band)
        canvas.paste(Image.composite(Image.new("RGB", band, _shade(other)), first, mask), (0, y0))
    draw = ImageDraw.Draw(canvas)
    if scene == "street":  # kerb line and lane dashes
        draw.rectangle([0, line, w, line + max(2, h // 60)], (200, 200, 195))
        lane, dash = int(line + (h - line) * 0.6), max(12, w // 12)
        for x in range(int(rng.integers(0, dash)), w, 2 * dash):
            draw.rectangle([x, lane, x + dash, lane + max(2, h // 80)], (235, 235, 220))
    else:  # skirting board
        draw.rectangle([0, line - max(3, h // 50), w, line], _shade(top[1] * 0.6))
    return canvas


# One drawing per label, filling its box. Each takes the canvas and the box in pixels.
def _car(cv: _Canvas, r: _Rect) -> None:
    paint = cv.pick(_CARS)
    edge = _shade(paint, 0.5)
    if cv.rng.random() < 0.5:
        r = r.mirrored()
    cabin = [(0.16, 0.42), (0.27, 0.04), (0.72, 0.04), (0.86, 0.42)]
    cv.shape(r, cabin, paint, edge, cv.width(r, 0.015))
    cv.shape(r, [(0.22, 0.4), (0.3, 0.1), (0.48, 0.1), (0.48, 0.4)], _GLASS, edge)
    cv.shape(r, [(0.52, 0.4), (0.52, 0.1), (0.7, 0.1), (0.8, 0.4)], _GLASS, edge)
    body = r.sub(0, 1, 0.36, 0.86)
    cv.shape(body, "rounded", paint, edge, cv.width(r, 0.015), ("gloss", _shade(paint, 0.75)))
    for a in (0.04, 0.62):  # wheel arches, under the Wheel boxes at synth's _WHEELS
        cv.shape(r.sub(a, a + 0.34, 0.5, 1.0), "ellipse", _DARK)
    cv.shape(r.sub(0.93, 0.99, 0.45, 0.56), "ellipse", (250, 240, 170))
    cv.shape(r.sub(0.01, 0.05, 0.45, 0.58), "rect", (200, 20, 20))


def _wheel(cv: _Canvas, r: _Rect) -> None:
    disc = r.disc()
    cv.shape(disc, "ellipse", cv.pick(((28, 28, 30),), 0.2), texture=("noise", (55, 55, 58)))
    cv.shape(disc.sub(0.16, 0.84, 0.16, 0.84), "ellipse", (75, 75, 80))


def _hubcap(cv: _Canvas, r: _Rect) -> None:
    disc, grey = r.disc(), cv.pick((_SILVER,), 0.08)
    cv.shape(disc, "ellipse", grey, (90, 90, 95), cv.width(disc, 0.05))
    (cx, cy), spokes = disc.pt(0.5, 0.5), int(cv.rng.integers(5, 8))
    turn = cv.rng.uniform(0, 2 * math.pi)
    for k in range(spokes):
        a = turn + 2 * math.pi * k / spokes
        end = (cx + 0.45 * disc.side * math.cos(a), cy + 0.45 * disc.side * math.sin(a))
        cv.draw.line([(cx, cy), end], (100, 100, 108), cv.width(disc, 0.09))
    cv.shape(disc.sub(0.36, 0.64, 0.36, 0.64), "ellipse", (130, 130, 138), (70, 70, 75))


def _lug_nut(cv: _Canvas, r: _Rect) -> None:
    (cx, cy), radius = r.pt(0.5, 0.5), max(1.0, r.side / 2)
    cv.draw.regular_polygon((cx, cy, radius), 6, 0, (70, 70, 76), (25, 25, 25))
    cv.shape(r.disc(0.35), "ellipse", (150, 150, 155))


def _car_door(cv: _Canvas, r: _Rect) -> None:
    # The door is a panel of the car's own paint: read it under the door rather than guess.
    under = cv.img.getpixel(tuple(int(v) for v in r.pt(0.5, 0.75)))
    cv.shape(r, "rounded", _shade(under, 1.12), _shade(under, 0.4), cv.width(r, 0.04))
    cv.shape(r.sub(0.1, 0.9, 0.06, 0.38), "rect", _shade(_GLASS, 0.8), _shade(under, 0.4))


def _door_handle(cv: _Canvas, r: _Rect) -> None:
    cv.shape(r.sub(0.04, 0.96, 0.15, 0.85), "rounded", _SILVER, (60, 60, 66), cv.width(r, 0.12))
    cv.shape(r.sub(0.15, 0.85, 0.3, 0.45), "rect", (245, 245, 250))


def _license_plate(cv: _Canvas, r: _Rect) -> None:
    cv.shape(r, "rect", cv.pick(((245, 245, 240), (250, 210, 40)), 0.05), _DARK, cv.width(r, 0.1))
    for k in range(6):
        top = cv.rng.uniform(0.22, 0.32)
        cv.shape(r.sub(0.1 + k * 0.135, 0.2 + k * 0.135, top, 1 - top), "rect", (20, 20, 30))


def _house(cv: _Canvas, r: _Rect) -> None:
    wall = cv.pick(_WALLS)
    texture = ("bricks", _shade(wall, 0.6)) if cv.rng.random() < 0.5 else None
    cv.shape(r.sub(0, 1, 0.3, 1), "rect", wall, _shade(wall, 0.5), cv.width(r, 0.01), texture)
    if texture is None:  # lap siding, drawn as lines rather than a second tile
        for y in np.arange(0.36, 1, 0.05):
            cv.draw.line([r.pt(0, y), r.pt(1, y)], _shade(wall, 0.8), 1)


def _roof(cv: _Canvas, r: _Rect) -> None:
    tiles = cv.pick(_ROOFS)
    gable, hip = [(0, 1), (1, 1), (0.5, 0)], [(0, 1), (1, 1), (0.82, 0.05), (0.18, 0.05)]
    outline = gable if cv.rng.random() < 0.5 else hip
    cv.shape(r, outline, tiles, texture=("shingles", _shade(tiles, 0.55)))
    cv.shape(r, outline, None, _shade(tiles, 0.45), cv.width(r, 0.03))


def _chimney(cv: _Canvas, r: _Rect) -> None:
    brick = cv.pick(((160, 70, 50),))
    cv.shape(r.sub(0.1, 0.9, 0.1, 1), "rect", brick, texture=("bricks", _shade(brick, 0.5)))
    cv.shape(r.sub(0, 1, 0, 0.12), "rect", (60, 55, 55))


def _window(cv: _Canvas, r: _Rect) -> None:
    frame = cv.pick(((245, 245, 240), (240, 235, 210)), 0.04)
    cv.shape(r, "rect", frame)
    pane = r.sub(0.09, 0.91, 0.09, 0.91)
    cv.shape(pane, "rect", cv.pick((_GLASS,), 0.06), texture=("gloss", (70, 130, 205)))
    cv.shape(r.sub(0.45, 0.55, 0.05, 0.95), "rect", frame)
    cv.shape(r.sub(0.05, 0.95, 0.45, 0.55), "rect", frame)


def _door(cv: _Canvas, r: _Rect) -> None:
    wood = cv.pick(_DOORS)
    cv.shape(r, "rect", wood, _shade(wood, 0.4), cv.width(r, 0.04), ("grain", _shade(wood, 0.7)))
    for y0, y1 in ((0.07, 0.45), (0.55, 0.93)):
        cv.shape(r.sub(0.18, 0.82, y0, y1), "rect", None, _shade(wood, 0.6), cv.width(r, 0.03))
    cv.shape(r.sub(0.72, 0.86, 0.5, 0.57), "ellipse", (225, 180, 60), (120, 90, 20))


def _person(cv: _Canvas, r: _Rect) -> None:
    shirt, trousers = cv.pick(_CLOTHES), cv.pick(_TROUSERS)
    skin, hair = cv.skin, cv.pick(_HAIR)
    for a in (0.28, 0.53):  # legs, then shoes
        cv.shape(r.sub(a, a + 0.19, 0.62, 0.96), "rect", trousers)
        cv.shape(r.sub(a - 0.03, a + 0.21, 0.94, 1.0), "ellipse", _DARK)
    for a in (0.11, 0.77):  # arms and hands
        cv.shape(r.sub(a, a + 0.12, 0.38, 0.68), "rounded", _shade(shirt, 0.85))
        cv.shape(r.sub(a, a + 0.12, 0.65, 0.73), "ellipse", skin)
    cv.shape(r.sub(0.2, 0.8, 0.36, 0.66), "rounded", shirt, texture=("noise", _shade(shirt, 0.8)))
    cv.shape(r.sub(0.42, 0.58, 0.32, 0.4), "rect", skin)
    cv.shape(r.sub(0.15, 0.85, 0.0, 0.38), "ellipse", hair)  # the Face box lies on top of it


def _face(cv: _Canvas, r: _Rect) -> None:
    skin = cv.skin
    cv.shape(r.sub(0.04, 0.96, 0.1, 1.0), "ellipse", skin, _shade(skin, 0.7))
    cv.draw.arc(r.sub(0.32, 0.68, 0.62, 0.86).xy, 20, 160, (150, 50, 50), cv.width(r, 0.04))
    cv.draw.line([r.pt(0.5, 0.5), r.pt(0.47, 0.65)], _shade(skin, 0.7), cv.width(r, 0.02))


def _eye(cv: _Canvas, r: _Rect) -> None:
    cv.shape(r.sub(0, 1, 0.18, 0.82), "ellipse", (248, 248, 244), (60, 40, 30), cv.width(r, 0.05))
    cv.shape(r.disc(0.5), "ellipse", cv.iris)
    cv.shape(r.disc(0.22), "ellipse", (10, 10, 10))


def _table(cv: _Canvas, r: _Rect) -> None:
    wood = cv.pick(_WOOD)
    for a in (0.06, 0.86, 0.2, 0.74):  # legs: front pair, then the back pair
        cv.shape(
            r.sub(a, a + 0.08, 0.18, 1 if a in (0.06, 0.86) else 0.84),
            "rect",
            _shade(wood, 0.8),
            _shade(wood, 0.5),
        )
    cv.shape(r.sub(0, 1, 0, 0.2), "rect", wood, _shade(wood, 0.5), 1, ("grain", _shade(wood, 0.7)))
    cv.shape(r.sub(0, 1, 0.17, 0.24), "rect", _shade(wood, 0.65))


def _desk(cv: _Canvas, r: _Rect) -> None:
    # Drawn over its Table (the same object): a darker top, a left leg and a drawer pedestal.
    wood = _shade(cv.pick(_WOOD), 0.8)
    grain = ("grain", _shade(wood, 0.7))
    cv.shape(r.sub(0.04, 0.12, 0.15, 1), "rect", wood, _shade(wood, 0.5))
    cv.shape(r.sub(0, 1, 0, 0.18), "rect", wood, _shade(wood, 0.5), 1, grain)
    pedestal = r.sub(0.58, 0.96, 0.18, 1)
    cv.shape(pedestal, "rect", _shade(wood, 1.15), _shade(wood, 0.5), 1, grain)
    for k in range(3):
        drawer = pedestal.sub(0.08, 0.92, 0.05 + k * 0.32, 0.32 + k * 0.32)
        cv.shape(drawer, "rect", None, _shade(wood, 0.45), cv.width(r, 0.01))
        cv.shape(drawer.sub(0.4, 0.6, 0.4, 0.6), "ellipse", (210, 190, 120))


def _tablecloth(cv: _Canvas, r: _Rect) -> None:
    hem = [(k / 10, 0.42 if k % 2 else 0.5) for k in range(10, -1, -1)]
    colour = cv.pick(((200, 30, 40), (40, 80, 170), (50, 140, 70)))
    cv.shape(r, [(0, 0), (1, 0), *hem], colour, texture=("checks", (245, 245, 240)))


def _bus(cv: _Canvas, r: _Rect) -> None:
    paint = cv.pick(_BUSES)
    if cv.rng.random() < 0.5:
        r = r.mirrored()
    cv.shape(r.sub(0, 1, 0, 0.88), "rounded", paint, _shade(paint, 0.5), cv.width(r, 0.02))
    band = r.sub(0.04, 0.84, 0.12, 0.56)  # the passengers' box sits over this band
    cv.shape(band, "rect", (95, 125, 150), texture=("gloss", (60, 85, 110)))
    for k in range(1, 6):
        cv.shape(band.sub(k / 6 - 0.012, k / 6 + 0.012, 0, 1), "rect", paint)
    cv.shape(r.sub(0.86, 0.96, 0.12, 0.86), "rect", (110, 140, 165), _shade(paint, 0.5), 2)
    for a in (0.1, 0.68):
        cv.shape(r.sub(a, a + 0.18, 0.7, 1.0).disc(), "ellipse", _DARK)
        cv.shape(r.sub(a, a + 0.18, 0.7, 1.0).disc(0.45), "ellipse", (150, 150, 155))
    cv.shape(r.sub(0.965, 0.995, 0.66, 0.76), "rect", (250, 240, 170))


def _coach(cv: _Canvas, r: _Rect) -> None:
    # Drawn over its Bus (the same vehicle): a tinted roof with a sign and a livery band.
    livery = cv.pick(_BRIGHT)
    cv.shape(r.sub(0.01, 0.99, 0.0, 0.11), "rounded", (70, 70, 80))
    cv.shape(r.sub(0.3, 0.7, 0.02, 0.09), "rect", (250, 170, 40))
    cv.shape(r.sub(0.01, 0.99, 0.57, 0.66), "rect", livery)
    cv.shape(r.sub(0.01, 0.99, 0.66, 0.69), "rect", _shade(livery, 0.55))


def _aquarium(cv: _Canvas, r: _Rect) -> None:
    cv.shape(r, "rect", (45, 45, 50))
    water = r.sub(0.04, 0.96, 0.06, 0.9)
    cv.shape(water, "rect", cv.pick(((60, 140, 190),), 0.08), texture=("noise", (25, 85, 140)))
    cv.shape(water.sub(0, 1, 0.85, 1), "rect", (215, 190, 140), texture=("noise", (160, 140, 95)))
    for a in cv.rng.uniform(0.1, 0.9, 3):  # weeds
        cv.draw.line(
            [water.pt(a, 0.95), water.pt(a + 0.05, 0.7), water.pt(a - 0.03, 0.45)],
            (40, 140, 60),
            cv.width(water, 0.03),
        )
    for a, b in cv.rng.uniform(0.1, 0.9, (4, 2)):  # bubbles
        cv.shape(water.sub(a, a + 0.06, b, b + 0.06).disc(), "ellipse", None, (220, 240, 250))


def _fish(cv: _Canvas, r: _Rect) -> None:
    body = cv.pick(_FISH)
    r = r.mirrored() if cv.rng.random() < 0.5 else r
    cv.shape(r, [(0.66, 0.5), (1, 0.12), (0.94, 0.5), (1, 0.88)], _shade(body, 0.8))
    cv.shape(r.sub(0.02, 0.74, 0.18, 0.82), "ellipse", body, _shade(body, 0.6), 1)
    cv.shape(r.sub(0.3, 0.36, 0.2, 0.8), "rect", (250, 250, 250))
    cv.shape(r.sub(0.12, 0.2, 0.36, 0.5), "ellipse", (15, 15, 15))


def _flag(cv: _Canvas, r: _Rect) -> None:
    colours = _FLAGS[cv.rng.integers(len(_FLAGS))]
    cv.shape(r.sub(0, 0.06, 0, 1), "rect", (80, 80, 85))
    cloth, across = r.sub(0.06, 1, 0.02, 0.64), cv.rng.random() < 0.5
    for k, colour in enumerate(colours):
        stripe = (
            cloth.sub(k / 3, (k + 1) / 3, 0, 1) if across else cloth.sub(0, 1, k / 3, (k + 1) / 3)
        )
        cv.shape(stripe, "rect", colour)


def _bird(cv: _Canvas, r: _Rect) -> None:
    feathers = cv.pick(_BIRDS)
    r = r.mirrored() if cv.rng.random() < 0.5 else r
    cv.shape(r, [(0.15, 0.55), (0, 0.45), (0, 0.7)], _shade(feathers, 0.7))
    cv.shape(r.sub(0.1, 0.75, 0.35, 0.8), "ellipse", feathers)
    cv.shape(r.sub(0.55, 0.85, 0.18, 0.5), "ellipse", feathers)
    cv.shape(r, [(0.83, 0.3), (1, 0.36), (0.83, 0.42)], (240, 160, 30))
    cv.shape(r, [(0.25, 0.45), (0.58, 0.5), (0.38, 0.74)], _shade(feathers, 0.6))
    cv.shape(r.sub(0.7, 0.76, 0.28, 0.34), "ellipse", (10, 10, 10))
    for a in (0.38, 0.5):
        cv.draw.line([r.pt(a, 0.78), r.pt(a, 0.98)], (200, 130, 40), cv.width(r, 0.03))


def _balloon(cv: _Canvas, r: _Rect) -> None:
    rubber = cv.pick(_BRIGHT)
    cv.draw.line([r.pt(0.5, 0.78), r.pt(0.45, 0.9), r.pt(0.55, 1)], (90, 90, 90), 1)
    cv.shape(r.sub(0.15, 0.85, 0, 0.8), "ellipse", rubber, _shade(rubber, 0.6))
    cv.shape(r.sub(0.3, 0.42, 0.12, 0.28), "ellipse", _shade(rubber, 1.6))


_DRAW: dict[str, Callable[[_Canvas, _Rect], None]] = {
    "Car": _car, "Wheel": _wheel, "Hubcap": _hubcap, "Car door": _car_door,
    "Door handle": _door_handle, "License plate": _license_plate, "House": _house,
    "Roof": _roof, "Chimney": _chimney, "Window": _window, "Door": _door, "Person": _person,
    "Face": _face, "Eye": _eye, "Table": _table, "Bus": _bus, "Aquarium": _aquarium,
    "Desk": _desk, "Tablecloth": _tablecloth, "Coach": _coach, "Fish": _fish, "Flag": _flag,
    "Bird": _bird, "Lug nut": _lug_nut, "Balloon": _balloon,
}  # fmt: skip
_NAMES = [label.name for label in synth.TAXONOMY]
_SORT_SCALE = np.array([1.25 if name in _OVERLAYS else 1.0 for name in _NAMES])


def _group(cv: _Canvas, r: _Rect, draw: Callable[[_Canvas, _Rect], None]) -> None:
    """An IsGroupOf box: 2-6 small instances side by side, each a column of the box."""
    count = int(np.clip(round(abs(r.x1 - r.x0) / (0.45 * (r.y1 - r.y0))), 2, 6))
    for k in range(count):
        drop = cv.rng.uniform(0, 0.2)
        draw(cv, r.sub(k / count + 0.02, (k + 1) / count - 0.02, drop, 1))


def _has_twin(px: np.ndarray, labels: np.ndarray, k: int, twin: str) -> bool:
    """Whether box k of an image's boxes `px` (N, 4) has a `twin`-labelled box at IoU >= 0.9."""
    ix = np.minimum(px[:, 1], px[k, 1]) - np.maximum(px[:, 0], px[k, 0])
    iy = np.minimum(px[:, 3], px[k, 3]) - np.maximum(px[:, 2], px[k, 2])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    areas = (px[:, 1] - px[:, 0]) * (px[:, 3] - px[:, 2])
    iou = inter / (areas + areas[k] - inter)
    return bool(np.any((labels == _NAMES.index(twin)) & (iou >= _TWIN_IOU)))


def _underlay(base: Callable, overlay: Callable, cv: _Canvas, r: _Rect) -> None:
    """A lone overlay label: its object first (a Coach is a Bus with a livery), then itself."""
    base(cv, r)
    overlay(cv, r)


def image_size(image_id: str, seed: int) -> tuple[int, int]:
    """(width, height) in pixels of an image, stable in (image_id, seed): width 320-640 and a
    landscape aspect, height clipped to 240-480 (both inclusive)."""
    digest = hashlib.blake2b(f"{seed}/{image_id}/size".encode(), digest_size=8).digest()
    u, v = (int.from_bytes(digest[k : k + 4], "big") / 2**32 for k in (0, 4))
    width = _WIDTH[0] + int(u * (_WIDTH[1] - _WIDTH[0] + 1))
    height = round(width * (_ASPECT[0] + v * (_ASPECT[1] - _ASPECT[0])))
    return width, min(max(height, _HEIGHT[0]), _HEIGHT[1])


def render_image(ann: synth.SplitAnnotations, index: int, seed: int, quality: int = 90) -> bytes:
    """JPEG bytes of image `index` of `ann`; the same (ann, index, seed, quality) give the same
    bytes. Boxes are drawn largest first, so parts land on top of their objects."""
    image_id = str(ann.image_ids[index])
    width, height = image_size(image_id, seed)
    salt = hashlib.blake2b(f"{seed}/{image_id}/pixels".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(salt, "big"))
    cv = _Canvas(_background(str(ann.scenes[index]), (width, height), rng), rng)
    # Exposure, white balance and sensor noise per image, drawn before the boxes so that they
    # depend on the image alone: crops of one label differ between images.
    gain, bias = rng.uniform(0.9, 1.1, (3, 1)), rng.uniform(-10, 10)
    ox, oy = (int(rng.integers(0, t - s + 1)) for t, s in zip(_TILE, (width, height), strict=True))
    rows = np.flatnonzero(ann.image == index)
    px = ann.boxes[rows] * [width, width, height, height]  # XMin, XMax, YMin, YMax
    labels = ann.label[rows]
    area = (px[:, 1] - px[:, 0]) * (px[:, 3] - px[:, 2]) / _SORT_SCALE[labels]
    # One drawing per box is the unit of work here; an image holds ~10 boxes.
    for k in np.argsort(-area, kind="stable"):
        name, (x0, x1, y0, y1) = _NAMES[labels[k]], px[k]
        draw = _DRAW[name]
        if name in _OVERLAYS and not _has_twin(px, labels, k, _OVERLAYS[name]):
            draw = functools.partial(_underlay, _DRAW[_OVERLAYS[name]], draw)
        if ann.is_group_of[rows[k]]:
            _group(cv, _Rect(x0, y0, x1, y1), draw)
        else:
            draw(cv, _Rect(x0, y0, x1, y1))
    lut = np.clip(np.arange(256) * gain + bias, 0, 255).astype(np.uint8)
    img = cv.img.point(lut.ravel().tolist())
    noise = _grain().crop((ox, oy, ox + width, oy + height))
    img = ImageChops.add(img, noise, 1.0, -_GRAIN_MEAN)
    out = BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


@functools.lru_cache(maxsize=3)
def _split(split: str, n_images: int, seed: int) -> synth.SplitAnnotations:
    return synth.generate_split(split, n_images, seed)


def _render_range(task: tuple[str, int, int, int, int]) -> list[bytes]:
    """JPEGs of images [start, stop) of task (split, n_images, seed, start, stop); a worker
    process regenerates the split once and keeps it for its next tasks."""
    split, n_images, seed, start, stop = task
    ann = _split(split, n_images, seed)
    return [render_image(ann, i, seed) for i in range(start, stop)]


def write_synthetic_images(
    root: str, images_per_split: Mapping[str, int] | None = None, seed: int = 0, workers: int = 1
) -> dict:
    """Write `{root}/{split}/{image_id}.jpg` for every image of `generate_split(split, n, seed)`.

    Args:
        root: dataset folder (local path or fsspec URL), the one `write_synthetic_dataset` wrote.
        images_per_split: images per split, default 1200 train, 200 validation, 200 test.
        seed: the dataset's seed; the same seed gives byte-identical JPEGs.
        workers: processes that render (>= 1); the bytes do not depend on it. Files are
            written from this process, so memory:// works with any count.
    Returns:
        {"root", "seed", "splits": {split: {"images", "bytes"}}, "images", "seconds"}.
    """
    sizes = dict(synth.DEFAULT_IMAGES_PER_SPLIT if images_per_split is None else images_per_split)
    counts_ok = all(n >= 0 for n in sizes.values()) and set(sizes) <= set(synth.SPLITS)
    if seed < 0 or workers < 1 or not counts_ok:
        raise ValueError(
            f"need seed >= 0, workers >= 1 and image counts >= 0 for {synth.SPLITS}; "
            f"got {seed}, {workers}, {sizes}"
        )
    started = time.perf_counter()
    summary: dict = {"root": root, "seed": seed, "splits": {}}
    with contextlib.ExitStack() as stack:
        render = map
        if workers > 1:  # spawn, not fork: the parent may hold polars or gcsfs threads
            render = stack.enter_context(ProcessPoolExecutor(workers, get_context("spawn"))).map
        for split, n in sizes.items():
            n, written = int(n), 0
            tasks = [(split, n, seed, s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]
            jpegs = itertools.chain.from_iterable(render(_render_range, tasks))
            for image_id, data in zip(_split(split, n, seed).image_ids, jpegs, strict=True):
                io.write_bytes(io.join(root, split, f"{image_id}.jpg"), data)
                written += len(data)
            summary["splits"][split] = {"images": n, "bytes": written}
    summary["images"] = sum(int(n) for n in sizes.values())
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary
