"""Tests of hierdata.synth.images: sizes, determinism, decodable JPEGs, and that each label's box
shows its own drawing, parts above objects, groups as several figures.
"""

import io as bytesio
import uuid

import numpy as np
import pytest
from PIL import Image

from hierdata import io, synth
from hierdata.synth import image_size, render_image, write_synthetic_images

NAMES = [label.name for label in synth.TAXONOMY]
CENTRE = (0.3, 0.7, 0.2, 0.8)  # XMin, XMax, YMin, YMax


def one_image(boxes: list[tuple], scene: str = "room", image_id: str = "00000000000000aa"):
    """SplitAnnotations of one image holding `boxes`: (label name, (x0, x1, y0, y1)[, group])."""
    n = len(boxes)
    return synth.SplitAnnotations(
        image_ids=np.array([image_id]),
        scenes=np.array([scene]),
        image=np.zeros(n, np.int64),
        label=np.array([NAMES.index(b[0]) for b in boxes], np.int64),
        boxes=np.array([b[1] for b in boxes], float).reshape(n, 4),
        is_occluded=np.zeros(n, np.int8),
        is_truncated=np.zeros(n, np.int8),
        is_group_of=np.array([b[2] if len(b) > 2 else 0 for b in boxes], np.int8),
    )


def decode(data: bytes) -> np.ndarray:
    """(H, W, 3) float pixels of a JPEG."""
    return np.asarray(Image.open(bytesio.BytesIO(data)).convert("RGB"), float)


def crop(pixels: np.ndarray, box: tuple, size: int | None = None) -> np.ndarray:
    """The pixels inside a normalised (x0, x1, y0, y1) box, optionally resized to size x size."""
    h, w = pixels.shape[:2]
    x0, x1, y0, y1 = box
    region = pixels[round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]
    if size is None:
        return region
    return np.asarray(Image.fromarray(region.astype(np.uint8)).resize((size, size)), float)


@pytest.fixture(scope="module")
def train() -> synth.SplitAnnotations:
    return synth.generate_split("train", 60, seed=3)


def test_image_size_is_stable_per_id_and_in_range(train):
    sizes = [image_size(str(i), 3) for i in train.image_ids]
    assert sizes == [image_size(str(i), 3) for i in train.image_ids]
    assert all(320 <= w <= 640 and 240 <= h <= 480 and h < w for w, h in sizes)
    assert len(set(sizes)) > 50  # per id, not one size for all
    assert [image_size(str(i), 4) for i in train.image_ids] != sizes  # the seed matters


def test_same_seed_gives_byte_identical_jpegs(train):
    again = synth.generate_split("train", 60, seed=3)
    first = [render_image(train, i, 3) for i in range(5)]
    assert first == [render_image(again, i, 3) for i in range(5)]
    assert len(set(first)) == 5
    assert render_image(train, 0, 4) != first[0]


def test_jpeg_decodes_at_the_stated_size(train):
    for index in range(8):
        data = render_image(train, index, 3, quality=80)
        img = Image.open(bytesio.BytesIO(data))
        assert img.format == "JPEG" and img.mode == "RGB"
        assert img.size == image_size(str(train.image_ids[index]), 3)


def test_every_label_has_its_own_drawing():
    """The same box on the same background, one label at a time: each crop differs from the bare
    background and from every other label's crop (mean absolute difference, 0-255 scale)."""
    background = crop(decode(render_image(one_image([]), 0, 0)), CENTRE, 32)
    crops = {name: crop(decode(render_image(one_image([(name, CENTRE)]), 0, 0)), CENTRE, 32)
             for name in NAMES}  # fmt: skip
    for name, pixels in crops.items():
        assert np.abs(pixels - background).mean() > 20, name
    for i, a in enumerate(NAMES):
        for b in NAMES[i + 1 :]:
            assert np.abs(crops[a] - crops[b]).mean() > 12, (a, b)


def test_wheel_is_a_dark_disc_window_light_blue_hubcap_grey():
    wheel, window, hubcap = ((0.1, 0.3, 0.5, 0.8), (0.4, 0.6, 0.2, 0.5), (0.7, 0.9, 0.5, 0.8))
    ann = one_image([("Wheel", wheel), ("Window", window), ("Hubcap", hubcap)], scene="street")
    pixels = decode(render_image(ann, 0, 0))
    # The inner half of each disc: the tyre's rim for the wheel, the grey face for the hubcap.
    wheel_rgb = crop(pixels, (0.15, 0.25, 0.58, 0.72)).mean((0, 1))
    window_rgb = crop(pixels, window).mean((0, 1))
    hubcap_rgb = crop(pixels, (0.75, 0.85, 0.6, 0.7)).mean((0, 1))
    assert wheel_rgb.max() < 110
    assert window_rgb[2] > window_rgb[0] + 25 and window_rgb.mean() > 150
    assert np.ptp(hubcap_rgb) < 40 and hubcap_rgb.mean() > 120
    outside = crop(pixels, (0.0, 0.08, 0.5, 0.8)).mean((0, 1))  # road, left of the wheel
    assert np.abs(wheel_rgb - outside).max() > 30


def test_larger_boxes_first_so_parts_lie_on_their_objects():
    """Boxes listed child first still draw the hubcap over the wheel over the car."""
    car, wheel = (0.1, 0.9, 0.3, 0.8), (0.15, 0.4, 0.55, 0.8)
    hubcap = (0.2, 0.35, 0.6, 0.75)
    ann = one_image([("Hubcap", hubcap), ("Wheel", wheel), ("Car", car)], scene="street")
    centre = crop(decode(render_image(ann, 0, 0)), (0.25, 0.3, 0.65, 0.7)).mean((0, 1))
    assert np.ptp(centre) < 40 and centre.mean() > 100  # the hubcap's grey, on top


def test_near_duplicate_tablecloth_is_drawn_over_its_table():
    """duplicate_iou boxes: a slightly larger Tablecloth is the same table, covered by a cloth."""
    table, cloth = (0.3, 0.7, 0.4, 0.8), (0.29, 0.71, 0.39, 0.81)
    bare = decode(render_image(one_image([("Table", table)]), 0, 0))
    covered = decode(render_image(one_image([("Table", table), ("Tablecloth", cloth)]), 0, 0))
    top = (0.35, 0.65, 0.42, 0.5)  # the table top, under the cloth
    assert np.abs(crop(covered, top) - crop(bare, top)).mean() > 30


def test_group_box_draws_several_small_figures():
    """An IsGroupOf Person box holds figures across its width; one Person leaves its sides bare."""
    group_box = (0.1, 0.9, 0.3, 0.6)
    strip = (0.12, 0.18, 0.4, 0.55)  # inside the box, left of a lone figure's arms
    background = crop(decode(render_image(one_image([]), 0, 0)), strip)
    group = one_image([("Person", group_box, 1)])
    single = one_image([("Person", group_box, 0)])
    assert np.abs(crop(decode(render_image(group, 0, 0)), strip) - background).mean() > 20
    assert np.abs(crop(decode(render_image(single, 0, 0)), strip) - background).mean() < 8


def test_label_colours_hold_across_a_generated_split(train):
    """Median crop colour per label over real synth images: windows bluer and lighter than
    wheels, faces skin-toned, and two windows never pixel-identical (per-box jitter)."""
    means: dict[str, list[np.ndarray]] = {"Window": [], "Wheel": [], "Face": []}
    window_crops = []
    for index in range(len(train.image_ids)):
        pixels = decode(render_image(train, index, 3))
        for row in np.flatnonzero(train.image == index):
            name = NAMES[train.label[row]]
            if name in means and not train.is_group_of[row]:
                means[name].append(crop(pixels, tuple(train.boxes[row])).mean((0, 1)))
                if name == "Window":
                    window_crops.append(crop(pixels, tuple(train.boxes[row]), 16))
    window, wheel, face = (np.median(means[k], axis=0) for k in ("Window", "Wheel", "Face"))
    assert len(means["Window"]) >= 10 and len(means["Wheel"]) >= 3
    assert window[2] > window[0] + 20 and window.mean() > wheel.mean() + 40
    assert face[0] > face[2] + 30
    assert np.abs(window_crops[0] - window_crops[1]).mean() > 1


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_write_synthetic_images_writes_every_image_id(kind, tmp_path):
    root = f"memory://synth-images-{uuid.uuid4().hex}" if kind == "memory" else str(tmp_path)
    counts = {"train": 7, "validation": 3}
    summary = write_synthetic_images(root, counts, seed=5)
    assert summary["images"] == 10 and summary["seconds"] >= 0
    for split, n in counts.items():
        ann = synth.generate_split(split, n, 5)
        paths = [io.join(root, split, f"{image_id}.jpg") for image_id in ann.image_ids]
        assert [io.read_bytes(p) for p in paths] == [render_image(ann, i, 5) for i in range(n)]
        assert summary["splits"][split] == {
            "images": n,
            "bytes": sum(io.size(p) for p in paths),
        }
    fs, path = io.filesystem(root)
    assert not fs.exists(io.join(path, "test"))  # only the splits asked for


def test_worker_processes_do_not_change_the_bytes(tmp_path):
    counts = {"test": 40}  # two chunks of work
    write_synthetic_images(str(tmp_path / "one"), counts, seed=1, workers=1)
    write_synthetic_images(str(tmp_path / "two"), counts, seed=1, workers=2)
    one = sorted((tmp_path / "one" / "test").iterdir())
    two = sorted((tmp_path / "two" / "test").iterdir())
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 40
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one, two, strict=True))


@pytest.mark.parametrize(
    "counts, seed, workers",
    [({"train": -1}, 0, 1), ({"dev": 2}, 0, 1), ({"train": 2}, -1, 1), ({"train": 2}, 0, 0)],
)
def test_bad_arguments_raise_value_error(counts, seed, workers, tmp_path):
    with pytest.raises(ValueError, match="need seed >= 0"):
        write_synthetic_images(str(tmp_path), counts, seed=seed, workers=workers)
