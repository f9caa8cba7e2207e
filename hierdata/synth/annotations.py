"""The synthetic dataset's boxes: one split's images and valid boxes, with a known part-of truth.

Mining its train split with the DESIGN defaults accepts exactly `true_part_of_pairs()`.

Every image is a "street" or "room" scene holding one object that fills the frame or two side by
side in separate slots, so objects never contain each other. Objects carry parts and subparts at
jittered template positions, all with area >= 0.01. Adversarial pieces, one per rule, so that
disabling any one rule changes the accepted set:

- min_box_area: a Lug nut (area <= 0.0025) in most Hubcaps; kept, (Hubcap|Wheel|Car, Lug nut) pass.
- duplicate_iou: Tablecloth, Desk and Coach boxes (IoU >= 0.92 with a Table or Bus, mostly
  slightly larger); without the rule (Tablecloth, Table) passes, and (Desk, Table) and
  (Coach, Bus) too unless the is-a guard stops them (Desk, Coach are Subcategory synonyms).
- group children: an IsGroupOf Person box in 60% of the Buses; else (Bus|Coach, Person) pass.
- containment: a Flag with only 50-70% of its area in its House (and Roof): at 0.5 both pass.
- min_pair_proportion: 3 Birds in an exact 5% of the Houses: frequency ~75, proportion ~0.05.
- min_pair_frequency: a Fish in every Aquarium, 2.5% of the images: frequency ~30, proportion ~0.45.
- random-label boxes at random places (~0.8 per image): chance containments stay rare.

The malformed rows for the reader's reject path are added when the CSV is written (dataset.py).
"""

import hashlib
import math
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hierdata.synth.taxonomy import TAXONOMY

SPLITS = ("train", "validation", "test")
DEFAULT_IMAGES_PER_SPLIT = {"train": 1200, "validation": 200, "test": 200}
SCENES = ("street", "room")  # which objects an image holds (and, later, its background)
_INDEX = {label.name: i for i, label in enumerate(TAXONOMY)}

# Object sizes in image units per (name, slot): width range, height range, lowest ymin. A slot is
# the full frame or one of two halves; sizes keep every true part and subpart at area >= 0.01.
_SIZES = {
    ("Car", "full"): ((0.72, 0.94), (0.50, 0.70), 0.03),  # full frame only: door handles
    ("House", "half"): ((0.40, 0.47), (0.62, 0.88), 0.08),  # ymin >= 0.08: room for the flag
    ("House", "full"): ((0.45, 0.75), (0.62, 0.88), 0.08),
    ("Person", "half"): ((0.38, 0.47), (0.85, 0.95), 0.02),
    ("Person", "full"): ((0.40, 0.55), (0.85, 0.95), 0.02),
    ("Table", "half"): ((0.30, 0.47), (0.30, 0.50), 0.30),
    ("Table", "full"): ((0.40, 0.80), (0.30, 0.50), 0.30),
    ("Bus", "half"): ((0.40, 0.47), (0.40, 0.60), 0.10),
    ("Bus", "full"): ((0.60, 0.90), (0.40, 0.60), 0.10),
    ("Aquarium", "half"): ((0.35, 0.47), (0.35, 0.55), 0.10),
}
# Object mix per (scene, slot); aquariums are placed apart, at an exact rate.
_MIX = {
    ("street", "full"): {"Car": 0.55, "House": 0.2, "Person": 0.1, "Bus": 0.15},
    ("street", "half"): {"House": 0.4, "Person": 0.35, "Bus": 0.25},
    ("room", "full"): {"Person": 0.4, "Table": 0.6},
    ("room", "half"): {"Person": 0.5, "Table": 0.5},
}
_ROOM_RATE, _TWO_SLOT_RATE, _AQUARIUM_RATE = 0.3, 0.6, 0.025
_BIRD_HOUSE_RATE, _BIRDS_PER_HOUSE = 0.05, 3
_DISTRACTORS_PER_IMAGE = 0.8
# Part templates: (x0, x1, y0, y1) as fractions of the parent box.
_WHEELS = ((0.06, 0.36, 0.52, 0.98), (0.64, 0.94, 0.52, 0.98))
_HUBCAP, _CAR_DOOR = (0.2, 0.8, 0.2, 0.8), (0.38, 0.62, 0.12, 0.78)
_DOOR_HANDLE, _PLATE = (0.1, 0.9, 0.38, 0.62), (0.39, 0.61, 0.81, 0.97)
_ROOF, _CHIMNEY = (0.0, 1.0, 0.0, 0.38), (0.68, 0.9, 0.1, 0.75)
_WINDOWS, _DOOR = ((0.1, 0.38, 0.45, 0.68), (0.62, 0.9, 0.45, 0.68)), (0.4, 0.6, 0.6, 1.0)
_FACE, _EYES = (0.18, 0.82, 0.03, 0.37), ((0.1, 0.46, 0.22, 0.68), (0.54, 0.9, 0.22, 0.68))
_PASSENGERS, _FISH = (0.08, 0.92, 0.15, 0.55), (0.25, 0.75, 0.3, 0.7)


class _Boxes(NamedTuple):
    """Boxes being generated: image index (N,) and [x0, x1, y0, y1] (N, 4), normalised."""

    image: np.ndarray
    xyxy: np.ndarray

    def take(self, mask: np.ndarray) -> "_Boxes":
        return _Boxes(self.image[mask], self.xyxy[mask])


@dataclass(frozen=True)
class SplitAnnotations:
    """One split's images and valid boxes, boxes in file order (sorted by image id).

    Boxes are normalised [XMin, XMax, YMin, YMax], rounded to the 6 decimals of the CSV.
    """

    image_ids: np.ndarray  # (I,) 16 lowercase hex chars
    scenes: np.ndarray  # (I,) one of SCENES
    image: np.ndarray  # (N,) int64 index into image_ids
    label: np.ndarray  # (N,) int64 index into TAXONOMY
    boxes: np.ndarray  # (N, 4) float64
    is_occluded: np.ndarray  # (N,) int8 0/1
    is_truncated: np.ndarray  # (N,) int8 0/1, the box touches the image border
    is_group_of: np.ndarray  # (N,) int8 0/1


class _Collector:
    """Accumulates (image, label index, box, group flag) chunks in generation order."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, name: str | np.ndarray, boxes: _Boxes, group: int = 0) -> _Boxes:
        label = np.broadcast_to(_INDEX[name] if isinstance(name, str) else name, boxes.image.shape)
        self.chunks.append((boxes.image, label, boxes.xyxy, np.full(label.shape, group, np.int8)))
        return boxes

    def part(
        self,
        name: str,
        parent: _Boxes,
        rel: tuple,
        rate: float,
        jitter: float = 0.0,
        group: int = 0,
    ) -> _Boxes:
        """A `name` box at template `rel` in a `rate` fraction of the parents, shifted by up to
        `jitter` of the parent's size but never past its edges (containment stays 1)."""
        parent = parent.take(self.rng.random(len(parent.image)) < rate)
        rel = np.broadcast_to(np.asarray(rel, float), parent.xyxy.shape)
        shift = self.rng.uniform(-jitter, jitter, (len(rel), 2))
        dx = np.clip(shift[:, :1], -rel[:, :1], 1 - rel[:, 1:2])
        dy = np.clip(shift[:, 1:], -rel[:, 2:3], 1 - rel[:, 3:])
        p = parent.xyxy
        xs = p[:, :1] + (rel[:, :2] + dx) * (p[:, 1:2] - p[:, :1])
        ys = p[:, 2:3] + (rel[:, 2:] + dy) * (p[:, 3:] - p[:, 2:3])
        return self.add(name, _Boxes(parent.image, np.hstack([xs, ys])), group)

    def squares(self, name: str, parent: _Boxes, side: tuple[float, float], below: float) -> None:
        """A square `name` box of a random side (image units) at a random place inside each
        parent, below `below` (a fraction of the parent's height from its top)."""
        p, n = parent.xyxy, len(parent.image)
        s = self.rng.uniform(*side, n)
        top = p[:, 2] + below * (p[:, 3] - p[:, 2])
        x0 = p[:, 0] + self.rng.random(n) * (p[:, 1] - p[:, 0] - s)
        y0 = top + self.rng.random(n) * (p[:, 3] - top - s)
        self.add(name, _Boxes(parent.image, np.stack([x0, x0 + s, y0, y0 + s], axis=1)))

    def near_duplicates(self, name: str, boxes: _Boxes) -> None:
        """Concentric copies scaled per side by 1.01-1.04 (70%) or 0.965-0.99: IoU >= 0.92."""
        n = len(boxes.image)
        grow = self.rng.random((n, 1)) < 0.7
        scale = np.where(
            grow, self.rng.uniform(1.01, 1.04, (n, 2)), self.rng.uniform(0.965, 0.99, (n, 2))
        )
        centre = (boxes.xyxy[:, [0, 2]] + boxes.xyxy[:, [1, 3]]) / 2
        half = (boxes.xyxy[:, [1, 3]] - boxes.xyxy[:, [0, 2]]) * scale / 2
        # (N, 2, 2) [axis][lo, hi] flattens to x0, x1, y0, y1.
        xyxy = np.stack([centre - half, centre + half], axis=2).reshape(n, 4)
        self.add(name, _Boxes(boxes.image, xyxy))


def _layout(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, _Boxes]:
    """Scenes (n,), then every object: names (M,) and boxes."""
    room = rng.random(n) < _ROOM_RATE
    two = rng.random(n) < _TWO_SLOT_RATE
    aquarium = np.zeros(n, bool)
    aquarium[rng.choice(n, round(_AQUARIUM_RATE * n), replace=False)] = True
    room |= aquarium
    two |= aquarium  # an aquarium takes the left half of a room image
    image = np.concatenate([np.arange(n), np.flatnonzero(two)])
    second, half = np.arange(len(image)) >= n, two[image]
    # Slots [0.02, 0.49] and [0.51, 0.98] never overlap, so objects never contain each other.
    lo, hi = np.where(half & second, 0.51, 0.02), np.where(half & ~second, 0.49, 0.98)
    slot = np.where(half, "half", "full")
    names = np.empty(len(image), dtype=object)
    u = rng.random(len(image))
    for (scene, kind), mix in _MIX.items():
        sel = (room[image] == (scene == "room")) & (slot == kind)
        cum = np.cumsum(list(mix.values()))
        names[sel] = np.array(list(mix), dtype=object)[
            np.searchsorted(cum / cum[-1], u[sel], "right")
        ]
    names[:n][aquarium] = "Aquarium"
    xyxy = np.empty((len(image), 4))
    w_u, h_u, x_u, y_u = rng.random((4, len(image)))
    for (name, kind), ((w0, w1), (h0, h1), top) in _SIZES.items():
        sel = (names == name) & (slot == kind)
        w, h = w0 + w_u[sel] * (w1 - w0), h0 + h_u[sel] * (h1 - h0)
        x0 = lo[sel] + x_u[sel] * (hi[sel] - lo[sel] - w)
        y0 = top + y_u[sel] * (0.99 - h - top)
        xyxy[sel] = np.stack([x0, x0 + w, y0, y0 + h], axis=1)
    return np.where(room, "room", "street"), names, _Boxes(image, xyxy)


def _car(col: _Collector, car: _Boxes) -> None:
    for rel in _WHEELS:
        hubcap = col.part("Hubcap", col.part("Wheel", car, rel, 0.95, 0.02), _HUBCAP, 0.85, 0.05)
        # min_box_area: lug nuts (side 0.03-0.05) are always dropped; kept, they would make
        # (Hubcap, Lug nut), (Wheel, Lug nut) and (Car, Lug nut) accepted.
        lug_nut = hubcap.take(col.rng.random(len(hubcap.image)) < 0.6)
        col.squares("Lug nut", lug_nut, (0.03, 0.05), 0)
    door = col.part("Car door", car, _CAR_DOOR, 0.9, 0.01)
    col.part("Door handle", door, _DOOR_HANDLE, 0.85, 0.05)
    col.part("License plate", car, _PLATE, 0.85, 0.01)


def _house(col: _Collector, house: _Boxes) -> None:
    col.part("Chimney", col.part("Roof", house, _ROOF, 0.9), _CHIMNEY, 0.75, 0.05)
    for rel in _WINDOWS:
        col.part("Window", house, rel, 0.9, 0.03)
    col.part("Door", house, _DOOR, 0.9, 0.03)
    # containment: a flag on the left of the roof, only 50-70% of its area inside the house
    # (and the roof); at containment 0.5, (House, Flag) and (Roof, Flag) would be accepted.
    top = house.take(col.rng.random(len(house.image)) < 0.5)
    n = len(top.image)
    side, inside = col.rng.uniform(0.11, 0.14, n), col.rng.uniform(0.5, 0.7, n)
    x0 = top.xyxy[:, 0] + col.rng.uniform(0.05, 0.45, n) * (top.xyxy[:, 1] - top.xyxy[:, 0])
    y0 = top.xyxy[:, 2] - (1 - inside) * side
    col.add("Flag", _Boxes(top.image, np.stack([x0, x0 + side, y0, y0 + side], axis=1)))
    # min_pair_proportion: several birds on the wall of an exact 5% of the houses give
    # (House, Bird) a frequency >= 50 (~24 houses x 3 in train) but a proportion ~0.05.
    n = len(house.image)
    chosen = col.rng.choice(n, math.ceil(_BIRD_HOUSE_RATE * n), replace=False)
    for _ in range(_BIRDS_PER_HOUSE):
        col.squares("Bird", house.take(chosen), (0.105, 0.12), 0.4)


def _leaf_objects(col: _Collector, names: np.ndarray, objects: _Boxes) -> None:
    table, bus = objects.take(names == "Table"), objects.take(names == "Bus")
    # duplicate_iou: the same table or bus boxed again under a related label. Tablecloth is no
    # is-a relative, so only this rule stops (Tablecloth, Table); Desk and Coach (Subcategory
    # synonyms) also meet the is-a guard. Desks and tablecloths go on disjoint tables, and all
    # three sit on leaf objects, so they inherit no relation from a parent or child.
    cover = col.rng.random(len(table.image))
    col.near_duplicates("Desk", table.take(cover < 0.35))
    col.near_duplicates("Tablecloth", table.take(cover >= 0.65))
    col.near_duplicates("Coach", bus.take(col.rng.random(len(bus.image)) < 0.35))
    # group children: an IsGroupOf Person box (the passengers) in 60% of the buses; allowed as
    # children, (Bus, Person) and (Coach, Person) would be accepted.
    col.part("Person", bus, _PASSENGERS, 0.6, 0.03, group=1)
    # min_pair_frequency: every aquarium holds a fish, but aquariums are 2.5% of the images
    # (30 in train), so (Aquarium, Fish) has a high proportion and a frequency < 50.
    col.part("Fish", objects.take(names == "Aquarium"), _FISH, 1.0, 0.1)


def _distractors(col: _Collector, n: int) -> None:
    """Random-label boxes anywhere, some below min_box_area: a given label lands inside a given
    object in ~1% of its boxes, far below min_pair_proportion."""
    image = np.repeat(np.arange(n), col.rng.poisson(_DISTRACTORS_PER_IMAGE, n))
    label = col.rng.integers(0, len(TAXONOMY), len(image))
    wh = col.rng.uniform(0.05, 0.3, (len(image), 2))
    xy = col.rng.random((len(image), 2)) * (1 - wh)
    col.add(label, _Boxes(image, np.hstack([xy, xy + wh])[:, [0, 2, 1, 3]]))


def image_ids(seed: int, split: str, n: int) -> np.ndarray:
    """(n,) ImageIDs of 16 lowercase hex chars, like Open Images, from (seed, split, index)."""
    ids = [
        hashlib.blake2b(f"{seed}/{split}/{i}".encode(), digest_size=8).hexdigest() for i in range(n)
    ]
    return np.array(ids, dtype="<U16")


def generate_split(split: str, n_images: int, seed: int = 0) -> SplitAnnotations:
    """The valid boxes of one split; deterministic in (seed, split, n_images)."""
    col = _Collector(np.random.default_rng([seed, zlib.crc32(split.encode())]))
    scenes, names, objects = _layout(col.rng, n_images)
    for name in ("Car", "House", "Person", "Table", "Bus", "Aquarium"):
        col.add(name, objects.take(names == name))
    _car(col, objects.take(names == "Car"))
    _house(col, objects.take(names == "House"))
    face = col.part("Face", objects.take(names == "Person"), _FACE, 0.95, 0.02)
    for rel in _EYES:
        col.part("Eye", face, rel, 0.9, 0.03)
    _leaf_objects(col, names, objects)
    _distractors(col, n_images)
    image, label, xyxy, group = (np.concatenate(c) for c in zip(*col.chunks, strict=True))
    xyxy = np.clip(np.round(xyxy.reshape(-1, 4), 6), 0.0, 1.0)
    truncated = (xyxy[:, [0, 2]] <= 0.002).any(axis=1) | (xyxy[:, [1, 3]] >= 0.998).any(axis=1)
    occluded = col.rng.random(len(image)) < 0.15
    ids = image_ids(seed, split, n_images)
    order = np.argsort(ids[image], kind="stable")  # official files are sorted by ImageID
    return SplitAnnotations(
        image_ids=ids,
        scenes=scenes,
        image=image[order].astype(np.int64),
        label=label[order].astype(np.int64),
        boxes=xyxy[order],
        is_occluded=occluded[order].astype(np.int8),
        is_truncated=truncated[order].astype(np.int8),
        is_group_of=group[order],
    )
