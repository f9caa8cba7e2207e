"""One drawing per label of the synthetic taxonomy (`DRAWINGS`), each filling its box on a
Canvas with its own shape, palette and texture.
"""

import math
from collections.abc import Callable

import numpy as np

from hierdata.synth.canvas import Canvas, Colour, Rect, shade

_CARS: tuple[Colour, ...] = ((180, 30, 35), (30, 70, 160), (190, 192, 196), (35, 35, 40))
_CARS += ((235, 235, 230), (40, 120, 60), (230, 190, 40))
_BUSES: tuple[Colour, ...] = ((240, 190, 30), (200, 40, 40), (40, 90, 170), (60, 140, 80))
_WALLS: tuple[Colour, ...] = ((225, 205, 165), (170, 80, 60), (240, 230, 150), (200, 215, 230))
_ROOFS: tuple[Colour, ...] = ((150, 50, 40), (100, 70, 50), (80, 85, 95), (170, 90, 50))
_DOORS: tuple[Colour, ...] = ((120, 70, 35), (150, 30, 35), (40, 90, 60), (40, 60, 120))
_WOOD: tuple[Colour, ...] = ((160, 110, 60), (120, 75, 40), (190, 150, 100), (95, 60, 35))
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


# One drawing per label, filling its box. Each takes the canvas and the box in pixels.
def _car(cv: Canvas, r: Rect) -> None:
    paint = cv.pick(_CARS)
    edge = shade(paint, 0.5)
    if cv.rng.random() < 0.5:
        r = r.mirrored()
    cabin = [(0.16, 0.42), (0.27, 0.04), (0.72, 0.04), (0.86, 0.42)]
    cv.shape(r, cabin, paint, edge, cv.width(r, 0.015))
    cv.shape(r, [(0.22, 0.4), (0.3, 0.1), (0.48, 0.1), (0.48, 0.4)], _GLASS, edge)
    cv.shape(r, [(0.52, 0.4), (0.52, 0.1), (0.7, 0.1), (0.8, 0.4)], _GLASS, edge)
    body = r.sub(0, 1, 0.36, 0.86)
    cv.shape(body, "rounded", paint, edge, cv.width(r, 0.015), ("gloss", shade(paint, 0.75)))
    for a in (0.04, 0.62):  # wheel arches, under the Wheel boxes at synth's _WHEELS
        cv.shape(r.sub(a, a + 0.34, 0.5, 1.0), "ellipse", _DARK)
    cv.shape(r.sub(0.93, 0.99, 0.45, 0.56), "ellipse", (250, 240, 170))
    cv.shape(r.sub(0.01, 0.05, 0.45, 0.58), "rect", (200, 20, 20))


def _wheel(cv: Canvas, r: Rect) -> None:
    disc = r.disc()
    cv.shape(disc, "ellipse", cv.pick(((28, 28, 30),), 0.2), texture=("noise", (55, 55, 58)))
    cv.shape(disc.sub(0.16, 0.84, 0.16, 0.84), "ellipse", (75, 75, 80))


def _hubcap(cv: Canvas, r: Rect) -> None:
    disc, grey = r.disc(), cv.pick((_SILVER,), 0.08)
    cv.shape(disc, "ellipse", grey, (90, 90, 95), cv.width(disc, 0.05))
    (cx, cy), spokes = disc.pt(0.5, 0.5), int(cv.rng.integers(5, 8))
    turn = cv.rng.uniform(0, 2 * math.pi)
    for k in range(spokes):
        a = turn + 2 * math.pi * k / spokes
        end = (cx + 0.45 * disc.side * math.cos(a), cy + 0.45 * disc.side * math.sin(a))
        cv.draw.line([(cx, cy), end], (100, 100, 108), cv.width(disc, 0.09))
    cv.shape(disc.sub(0.36, 0.64, 0.36, 0.64), "ellipse", (130, 130, 138), (70, 70, 75))


def _lug_nut(cv: Canvas, r: Rect) -> None:
    (cx, cy), radius = r.pt(0.5, 0.5), max(1.0, r.side / 2)
    cv.draw.regular_polygon((cx, cy, radius), 6, 0, (70, 70, 76), (25, 25, 25))
    cv.shape(r.disc(0.35), "ellipse", (150, 150, 155))


def _car_door(cv: Canvas, r: Rect) -> None:
    # The door is a panel of the car's own paint: read it under the door rather than guess.
    under = cv.img.getpixel(tuple(int(v) for v in r.pt(0.5, 0.75)))
    cv.shape(r, "rounded", shade(under, 1.12), shade(under, 0.4), cv.width(r, 0.04))
    cv.shape(r.sub(0.1, 0.9, 0.06, 0.38), "rect", shade(_GLASS, 0.8), shade(under, 0.4))


def _door_handle(cv: Canvas, r: Rect) -> None:
    cv.shape(r.sub(0.04, 0.96, 0.15, 0.85), "rounded", _SILVER, (60, 60, 66), cv.width(r, 0.12))
    cv.shape(r.sub(0.15, 0.85, 0.3, 0.45), "rect", (245, 245, 250))


def _license_plate(cv: Canvas, r: Rect) -> None:
    cv.shape(r, "rect", cv.pick(((245, 245, 240), (250, 210, 40)), 0.05), _DARK, cv.width(r, 0.1))
    for k in range(6):
        top = cv.rng.uniform(0.22, 0.32)
        cv.shape(r.sub(0.1 + k * 0.135, 0.2 + k * 0.135, top, 1 - top), "rect", (20, 20, 30))


def _house(cv: Canvas, r: Rect) -> None:
    wall = cv.pick(_WALLS)
    texture = ("bricks", shade(wall, 0.6)) if cv.rng.random() < 0.5 else None
    cv.shape(r.sub(0, 1, 0.3, 1), "rect", wall, shade(wall, 0.5), cv.width(r, 0.01), texture)
    if texture is None:  # lap siding, drawn as lines rather than a second tile
        for y in np.arange(0.36, 1, 0.05):
            cv.draw.line([r.pt(0, y), r.pt(1, y)], shade(wall, 0.8), 1)


def _roof(cv: Canvas, r: Rect) -> None:
    tiles = cv.pick(_ROOFS)
    gable, hip = [(0, 1), (1, 1), (0.5, 0)], [(0, 1), (1, 1), (0.82, 0.05), (0.18, 0.05)]
    outline = gable if cv.rng.random() < 0.5 else hip
    cv.shape(r, outline, tiles, texture=("shingles", shade(tiles, 0.55)))
    cv.shape(r, outline, None, shade(tiles, 0.45), cv.width(r, 0.03))


def _chimney(cv: Canvas, r: Rect) -> None:
    brick = cv.pick(((160, 70, 50),))
    cv.shape(r.sub(0.1, 0.9, 0.1, 1), "rect", brick, texture=("bricks", shade(brick, 0.5)))
    cv.shape(r.sub(0, 1, 0, 0.12), "rect", (60, 55, 55))


def _window(cv: Canvas, r: Rect) -> None:
    frame = cv.pick(((245, 245, 240), (240, 235, 210)), 0.04)
    cv.shape(r, "rect", frame)
    pane = r.sub(0.09, 0.91, 0.09, 0.91)
    cv.shape(pane, "rect", cv.pick((_GLASS,), 0.06), texture=("gloss", (70, 130, 205)))
    cv.shape(r.sub(0.45, 0.55, 0.05, 0.95), "rect", frame)
    cv.shape(r.sub(0.05, 0.95, 0.45, 0.55), "rect", frame)


def _door(cv: Canvas, r: Rect) -> None:
    wood = cv.pick(_DOORS)
    cv.shape(r, "rect", wood, shade(wood, 0.4), cv.width(r, 0.04), ("grain", shade(wood, 0.7)))
    for y0, y1 in ((0.07, 0.45), (0.55, 0.93)):
        cv.shape(r.sub(0.18, 0.82, y0, y1), "rect", None, shade(wood, 0.6), cv.width(r, 0.03))
    cv.shape(r.sub(0.72, 0.86, 0.5, 0.57), "ellipse", (225, 180, 60), (120, 90, 20))


def _person(cv: Canvas, r: Rect) -> None:
    shirt, trousers = cv.pick(_CLOTHES), cv.pick(_TROUSERS)
    skin, hair = cv.skin, cv.pick(_HAIR)
    for a in (0.28, 0.53):  # legs, then shoes
        cv.shape(r.sub(a, a + 0.19, 0.62, 0.96), "rect", trousers)
        cv.shape(r.sub(a - 0.03, a + 0.21, 0.94, 1.0), "ellipse", _DARK)
    for a in (0.11, 0.77):  # arms and hands
        cv.shape(r.sub(a, a + 0.12, 0.38, 0.68), "rounded", shade(shirt, 0.85))
        cv.shape(r.sub(a, a + 0.12, 0.65, 0.73), "ellipse", skin)
    cv.shape(r.sub(0.2, 0.8, 0.36, 0.66), "rounded", shirt, texture=("noise", shade(shirt, 0.8)))
    cv.shape(r.sub(0.42, 0.58, 0.32, 0.4), "rect", skin)
    cv.shape(r.sub(0.15, 0.85, 0.0, 0.38), "ellipse", hair)  # the Face box lies on top of it


def _face(cv: Canvas, r: Rect) -> None:
    skin = cv.skin
    cv.shape(r.sub(0.04, 0.96, 0.1, 1.0), "ellipse", skin, shade(skin, 0.7))
    cv.draw.arc(r.sub(0.32, 0.68, 0.62, 0.86).xy, 20, 160, (150, 50, 50), cv.width(r, 0.04))
    cv.draw.line([r.pt(0.5, 0.5), r.pt(0.47, 0.65)], shade(skin, 0.7), cv.width(r, 0.02))


def _eye(cv: Canvas, r: Rect) -> None:
    cv.shape(r.sub(0, 1, 0.18, 0.82), "ellipse", (248, 248, 244), (60, 40, 30), cv.width(r, 0.05))
    cv.shape(r.disc(0.5), "ellipse", cv.iris)
    cv.shape(r.disc(0.22), "ellipse", (10, 10, 10))


def _table(cv: Canvas, r: Rect) -> None:
    wood = cv.pick(_WOOD)
    for a in (0.06, 0.86, 0.2, 0.74):  # legs: front pair, then the back pair
        cv.shape(
            r.sub(a, a + 0.08, 0.18, 1 if a in (0.06, 0.86) else 0.84),
            "rect",
            shade(wood, 0.8),
            shade(wood, 0.5),
        )
    cv.shape(r.sub(0, 1, 0, 0.2), "rect", wood, shade(wood, 0.5), 1, ("grain", shade(wood, 0.7)))
    cv.shape(r.sub(0, 1, 0.17, 0.24), "rect", shade(wood, 0.65))


def _desk(cv: Canvas, r: Rect) -> None:
    # Drawn over its Table (the same object): a darker top, a left leg and a drawer pedestal.
    wood = shade(cv.pick(_WOOD), 0.8)
    grain = ("grain", shade(wood, 0.7))
    cv.shape(r.sub(0.04, 0.12, 0.15, 1), "rect", wood, shade(wood, 0.5))
    cv.shape(r.sub(0, 1, 0, 0.18), "rect", wood, shade(wood, 0.5), 1, grain)
    pedestal = r.sub(0.58, 0.96, 0.18, 1)
    cv.shape(pedestal, "rect", shade(wood, 1.15), shade(wood, 0.5), 1, grain)
    for k in range(3):
        drawer = pedestal.sub(0.08, 0.92, 0.05 + k * 0.32, 0.32 + k * 0.32)
        cv.shape(drawer, "rect", None, shade(wood, 0.45), cv.width(r, 0.01))
        cv.shape(drawer.sub(0.4, 0.6, 0.4, 0.6), "ellipse", (210, 190, 120))


def _tablecloth(cv: Canvas, r: Rect) -> None:
    hem = [(k / 10, 0.42 if k % 2 else 0.5) for k in range(10, -1, -1)]
    colour = cv.pick(((200, 30, 40), (40, 80, 170), (50, 140, 70)))
    cv.shape(r, [(0, 0), (1, 0), *hem], colour, texture=("checks", (245, 245, 240)))


def _bus(cv: Canvas, r: Rect) -> None:
    paint = cv.pick(_BUSES)
    if cv.rng.random() < 0.5:
        r = r.mirrored()
    cv.shape(r.sub(0, 1, 0, 0.88), "rounded", paint, shade(paint, 0.5), cv.width(r, 0.02))
    band = r.sub(0.04, 0.84, 0.12, 0.56)  # the passengers' box sits over this band
    cv.shape(band, "rect", (95, 125, 150), texture=("gloss", (60, 85, 110)))
    for k in range(1, 6):
        cv.shape(band.sub(k / 6 - 0.012, k / 6 + 0.012, 0, 1), "rect", paint)
    cv.shape(r.sub(0.86, 0.96, 0.12, 0.86), "rect", (110, 140, 165), shade(paint, 0.5), 2)
    for a in (0.1, 0.68):
        cv.shape(r.sub(a, a + 0.18, 0.7, 1.0).disc(), "ellipse", _DARK)
        cv.shape(r.sub(a, a + 0.18, 0.7, 1.0).disc(0.45), "ellipse", (150, 150, 155))
    cv.shape(r.sub(0.965, 0.995, 0.66, 0.76), "rect", (250, 240, 170))


def _coach(cv: Canvas, r: Rect) -> None:
    # Drawn over its Bus (the same vehicle): a tinted roof with a sign and a livery band.
    livery = cv.pick(_BRIGHT)
    cv.shape(r.sub(0.01, 0.99, 0.0, 0.11), "rounded", (70, 70, 80))
    cv.shape(r.sub(0.3, 0.7, 0.02, 0.09), "rect", (250, 170, 40))
    cv.shape(r.sub(0.01, 0.99, 0.57, 0.66), "rect", livery)
    cv.shape(r.sub(0.01, 0.99, 0.66, 0.69), "rect", shade(livery, 0.55))


def _aquarium(cv: Canvas, r: Rect) -> None:
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


def _fish(cv: Canvas, r: Rect) -> None:
    body = cv.pick(_FISH)
    r = r.mirrored() if cv.rng.random() < 0.5 else r
    cv.shape(r, [(0.66, 0.5), (1, 0.12), (0.94, 0.5), (1, 0.88)], shade(body, 0.8))
    cv.shape(r.sub(0.02, 0.74, 0.18, 0.82), "ellipse", body, shade(body, 0.6), 1)
    cv.shape(r.sub(0.3, 0.36, 0.2, 0.8), "rect", (250, 250, 250))
    cv.shape(r.sub(0.12, 0.2, 0.36, 0.5), "ellipse", (15, 15, 15))


def _flag(cv: Canvas, r: Rect) -> None:
    colours = _FLAGS[cv.rng.integers(len(_FLAGS))]
    cv.shape(r.sub(0, 0.06, 0, 1), "rect", (80, 80, 85))
    cloth, across = r.sub(0.06, 1, 0.02, 0.64), cv.rng.random() < 0.5
    for k, colour in enumerate(colours):
        stripe = (
            cloth.sub(k / 3, (k + 1) / 3, 0, 1) if across else cloth.sub(0, 1, k / 3, (k + 1) / 3)
        )
        cv.shape(stripe, "rect", colour)


def _bird(cv: Canvas, r: Rect) -> None:
    feathers = cv.pick(_BIRDS)
    r = r.mirrored() if cv.rng.random() < 0.5 else r
    cv.shape(r, [(0.15, 0.55), (0, 0.45), (0, 0.7)], shade(feathers, 0.7))
    cv.shape(r.sub(0.1, 0.75, 0.35, 0.8), "ellipse", feathers)
    cv.shape(r.sub(0.55, 0.85, 0.18, 0.5), "ellipse", feathers)
    cv.shape(r, [(0.83, 0.3), (1, 0.36), (0.83, 0.42)], (240, 160, 30))
    cv.shape(r, [(0.25, 0.45), (0.58, 0.5), (0.38, 0.74)], shade(feathers, 0.6))
    cv.shape(r.sub(0.7, 0.76, 0.28, 0.34), "ellipse", (10, 10, 10))
    for a in (0.38, 0.5):
        cv.draw.line([r.pt(a, 0.78), r.pt(a, 0.98)], (200, 130, 40), cv.width(r, 0.03))


def _balloon(cv: Canvas, r: Rect) -> None:
    rubber = cv.pick(_BRIGHT)
    cv.draw.line([r.pt(0.5, 0.78), r.pt(0.45, 0.9), r.pt(0.55, 1)], (90, 90, 90), 1)
    cv.shape(r.sub(0.15, 0.85, 0, 0.8), "ellipse", rubber, shade(rubber, 0.6))
    cv.shape(r.sub(0.3, 0.42, 0.12, 0.28), "ellipse", shade(rubber, 1.6))


DRAWINGS: dict[str, Callable[[Canvas, Rect], None]] = {
    "Car": _car, "Wheel": _wheel, "Hubcap": _hubcap, "Car door": _car_door,
    "Door handle": _door_handle, "License plate": _license_plate, "House": _house,
    "Roof": _roof, "Chimney": _chimney, "Window": _window, "Door": _door, "Person": _person,
    "Face": _face, "Eye": _eye, "Table": _table, "Bus": _bus, "Aquarium": _aquarium,
    "Desk": _desk, "Tablecloth": _tablecloth, "Coach": _coach, "Fish": _fish, "Flag": _flag,
    "Bird": _bird, "Lug nut": _lug_nut, "Balloon": _balloon,
}  # fmt: skip
