"""Synthetic photos for the synthetic demo dataset: one JPEG per image of `generate_split`.

A scene background per scene kind, and each label drawn inside its box as its own shape, colours
and texture, parents before parts, so every crop shows a distinct thing.
"""

import contextlib
import functools
import hashlib
import itertools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from io import BytesIO
from multiprocessing import get_context

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from hierdata import io
from hierdata.synth.annotations import (
    DEFAULT_IMAGES_PER_SPLIT,
    SPLITS,
    SplitAnnotations,
    generate_split,
)
from hierdata.synth.canvas import TILE, Canvas, Rect, patterns, shade
from hierdata.synth.drawings import DRAWINGS
from hierdata.synth.taxonomy import TAXONOMY

_WIDTH, _HEIGHT = (320, 640), (240, 480)  # pixels, inclusive
_ASPECT = (0.62, 0.80)  # height / width, like landscape photos
_GRAIN_MEAN = 16  # the sensor-noise tile is centred here, so add() can darken as well
_CHUNK = 32  # images per task when rendering in worker processes
# Near-duplicate labels (synth's duplicate_iou boxes) are the same object seen again: drawn as
# an overlay on the object they duplicate, after it (sorted as if 1.25x smaller) rather than
# hidden under it; with no such twin (a distractor) the object is drawn first, then the overlay.
_OVERLAYS = {"Tablecloth": "Table", "Desk": "Table", "Coach": "Bus"}
_TWIN_IOU = 0.9  # DESIGN's duplicate_iou default; synth's near-duplicates have IoU >= 0.92


@functools.cache
def _grain() -> Image.Image:
    """RGB sensor noise, sd 5 around _GRAIN_MEAN, added to every photo at a random offset."""
    rng = np.random.default_rng(7)
    noise = rng.normal(_GRAIN_MEAN, 5, (TILE[1], TILE[0], 3))
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
        ox, oy = (int(rng.integers(0, t - s + 1)) for t, s in zip(TILE, band, strict=True))
        mask = patterns()[pattern].crop((ox, oy, ox + band[0], oy + band[1]))
        first = _gradient(np.clip(colours, 0, 255), band)
        canvas.paste(Image.composite(Image.new("RGB", band, shade(other)), first, mask), (0, y0))
    draw = ImageDraw.Draw(canvas)
    if scene == "street":  # kerb line and lane dashes
        draw.rectangle([0, line, w, line + max(2, h // 60)], (200, 200, 195))
        lane, dash = int(line + (h - line) * 0.6), max(12, w // 12)
        for x in range(int(rng.integers(0, dash)), w, 2 * dash):
            draw.rectangle([x, lane, x + dash, lane + max(2, h // 80)], (235, 235, 220))
    else:  # skirting board
        draw.rectangle([0, line - max(3, h // 50), w, line], shade(top[1] * 0.6))
    return canvas


_NAMES = [label.name for label in TAXONOMY]
_SORT_SCALE = np.array([1.25 if name in _OVERLAYS else 1.0 for name in _NAMES])


def _group(cv: Canvas, r: Rect, draw: Callable[[Canvas, Rect], None]) -> None:
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


def _underlay(base: Callable, overlay: Callable, cv: Canvas, r: Rect) -> None:
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


def render_image(ann: SplitAnnotations, index: int, seed: int, quality: int = 90) -> bytes:
    """JPEG bytes of image `index` of `ann`; the same (ann, index, seed, quality) give the same
    bytes. Boxes are drawn largest first, so parts land on top of their objects."""
    image_id = str(ann.image_ids[index])
    width, height = image_size(image_id, seed)
    salt = hashlib.blake2b(f"{seed}/{image_id}/pixels".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(salt, "big"))
    cv = Canvas(_background(str(ann.scenes[index]), (width, height), rng), rng)
    # Exposure, white balance and sensor noise per image, drawn before the boxes so that they
    # depend on the image alone: crops of one label differ between images.
    gain, bias = rng.uniform(0.9, 1.1, (3, 1)), rng.uniform(-10, 10)
    ox, oy = (int(rng.integers(0, t - s + 1)) for t, s in zip(TILE, (width, height), strict=True))
    rows = np.flatnonzero(ann.image == index)
    px = ann.boxes[rows] * [width, width, height, height]  # XMin, XMax, YMin, YMax
    labels = ann.label[rows]
    area = (px[:, 1] - px[:, 0]) * (px[:, 3] - px[:, 2]) / _SORT_SCALE[labels]
    # One drawing per box is the unit of work here; an image holds ~10 boxes.
    for k in np.argsort(-area, kind="stable"):
        name, (x0, x1, y0, y1) = _NAMES[labels[k]], px[k]
        draw = DRAWINGS[name]
        if name in _OVERLAYS and not _has_twin(px, labels, k, _OVERLAYS[name]):
            draw = functools.partial(_underlay, DRAWINGS[_OVERLAYS[name]], draw)
        if ann.is_group_of[rows[k]]:
            _group(cv, Rect(x0, y0, x1, y1), draw)
        else:
            draw(cv, Rect(x0, y0, x1, y1))
    lut = np.clip(np.arange(256) * gain + bias, 0, 255).astype(np.uint8)
    img = cv.img.point(lut.ravel().tolist())
    noise = _grain().crop((ox, oy, ox + width, oy + height))
    img = ImageChops.add(img, noise, 1.0, -_GRAIN_MEAN)
    out = BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


@functools.lru_cache(maxsize=3)
def _split(split: str, n_images: int, seed: int) -> SplitAnnotations:
    return generate_split(split, n_images, seed)


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
    sizes = dict(DEFAULT_IMAGES_PER_SPLIT if images_per_split is None else images_per_split)
    counts_ok = all(n >= 0 for n in sizes.values()) and set(sizes) <= set(SPLITS)
    if seed < 0 or workers < 1 or not counts_ok:
        raise ValueError(
            f"need seed >= 0, workers >= 1 and image counts >= 0 for {SPLITS}; "
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
