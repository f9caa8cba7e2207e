"""The synthetic photos' drawing primitives: rectangle arithmetic (mirroring included), colour
shading, per-box jitter and the shared texture tiles."""

import hashlib

import numpy as np
from PIL import Image

from hierdata.synth.canvas import IRIS, SKIN, TILE, Canvas, Rect, patterns, shade


def test_rect_sub_pt_and_mirroring():
    r = Rect(10, 20, 110, 70)
    assert r.pt(0.5, 0.5) == (60, 45)
    assert r.sub(0.1, 0.3, 0.2, 1.0) == Rect(20, 30, 40, 70)
    mirrored = r.mirrored()
    assert mirrored == Rect(110, 20, 10, 70)
    # A mirrored rectangle draws its parts flipped, but PIL still gets left < right.
    assert mirrored.sub(0.1, 0.3, 0.2, 1.0) == Rect(100, 30, 80, 70)
    assert mirrored.xy == [10, 20, 110, 70]


def test_rect_disc_is_the_centred_square_of_the_shorter_side():
    r = Rect(0, 0, 100, 40)
    assert r.side == 40
    assert r.disc() == Rect(30, 0, 70, 40)
    assert r.disc(0.5) == Rect(40, 10, 60, 30)


def test_shade_scales_and_clips():
    assert shade((100, 200, 10), 1.5) == (150, 255, 15)
    assert shade((100, 200, 10), -1) == (0, 0, 0)
    assert shade((12.7, 0, 255)) == (12, 0, 255)


def test_pick_jitters_around_the_palette_within_the_spread():
    canvas = Canvas(Image.new("RGB", (8, 8)), np.random.default_rng(0))
    picks = np.array([canvas.pick(((100, 100, 100),), 0.1) for _ in range(200)])
    # base * [0.9, 1.1] + [-8, 8], as ints: within [82, 118].
    assert picks.min() >= 82 and picks.max() <= 118 and len({tuple(p) for p in picks}) > 100
    assert canvas.width(Rect(0, 0, 100, 50), 0.06) == 3 and canvas.width(Rect(0, 0, 5, 5)) == 1


def test_canvas_picks_one_skin_and_iris_per_image():
    first = Canvas(Image.new("RGB", (8, 8)), np.random.default_rng(3))
    second = Canvas(Image.new("RGB", (8, 8)), np.random.default_rng(3))
    assert (first.skin, first.iris) == (second.skin, second.iris)
    assert min(np.abs(np.subtract(first.skin, base)).max() for base in SKIN) <= 0.05 * 255 + 8
    assert min(np.abs(np.subtract(first.iris, base)).max() for base in IRIS) <= 0.12 * 255 + 8


def test_patterns_are_fixed_grey_tiles():
    tiles = patterns()
    assert set(tiles) >= {"noise", "clouds", "bricks", "stripes", "planks", "gloss"}
    assert all(tile.size == TILE and tile.mode == "L" for tile in tiles.values())
    stripes = np.asarray(tiles["stripes"], dtype=np.int64)
    assert stripes.shape == (TILE[1], TILE[0]) and stripes.std() > 20
    # Made from a fixed generator: pinned, since every synthetic JPEG depends on these pixels.
    digest = hashlib.sha256(tiles["stripes"].tobytes()).hexdigest()
    assert digest[:16] == "b7bce391ac1c02e7"
