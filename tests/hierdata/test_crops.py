"""Cropping (DESIGN "Shards"): the reference crop rule, draft decoding, resizing, image errors."""

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, JpegImagePlugin

from hierdata import crops
from hierdata.crops import (
    CropRequest,
    ImageError,
    crop_image,
    crop_rectangle,
    crop_rectangles,
    draft_scale,
    output_sizes,
    reduction_levels,
    render_crops,
)

PHOTOS = "openimages-photos"


def _photo_boxes(root: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """(xmin, xmax, ymin, ymax) per ImageID, in boxes.csv order."""
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    with open(root / "boxes.csv", newline="") as file:
        for row in csv.DictReader(file):
            box = tuple(float(row[name]) for name in ("XMin", "XMax", "YMin", "YMax"))
            boxes.setdefault(row["ImageID"], []).append(box)
    return boxes


def _reference_crops(root: Path) -> list[dict[str, str]]:
    with open(root / "reference-crops" / "crop-rectangles.csv", newline="") as file:
        return list(csv.DictReader(file))


def _decode(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.int16)


def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> Path:
    return shared_data / PHOTOS


def test_crop_rule_reproduces_the_reference_rectangles_and_pixels(photos: Path) -> None:
    boxes = _photo_boxes(photos)
    references = _reference_crops(photos)
    assert len(references) == 7
    for row in references:
        image = Image.open(photos / "images" / f"{row['ImageID']}.jpg")
        assert image.size == (int(row["Width"]), int(row["Height"]))
        box = boxes[row["ImageID"]][int(Path(row["crop_file"]).name[:2]) - 1]
        expected = tuple(int(row[name]) for name in ("px_x0", "px_y0", "px_x1", "px_y1"))
        assert crop_rectangle(box, *image.size) == expected
        ours = np.asarray(crop_image(image, box)).astype(np.int16)
        theirs = np.asarray(Image.open(photos / "reference-crops" / row["crop_file"]))
        assert ours.shape == theirs.shape
        different = ours != theirs
        if row["ImageID"] == "0c7b2e492da6ba02":
            assert not different.any()
        else:
            # 07988525d97edf50 (progressive, Adobe YCbCr): the reference's libjpeg build rounds
            # 11 green samples of 2.5M one level differently. A 1 px shift of the rectangle
            # changes the mean by > 5 levels, so the rectangle is still pinned exactly.
            assert np.abs(ours - theirs).max() <= 1
            assert different.mean() < 1e-4


def test_render_without_resize_keeps_reference_crop_sizes_and_pixels(photos: Path) -> None:
    boxes = _photo_boxes(photos)
    for image_id in ("07988525d97edf50", "0c7b2e492da6ba02"):
        source = (photos / "images" / f"{image_id}.jpg").read_bytes()
        requests = [CropRequest(f"b{i:03d}", *box) for i, box in enumerate(boxes[image_id])]
        outputs, size = render_crops(source, requests, crop_size=4096, quality=95)
        assert size == Image.open(io.BytesIO(source)).size
        assert set(outputs) == {"img", *(request.key for request in requests)}
        assert Image.open(io.BytesIO(outputs["img"])).size == size
        for row in _reference_crops(photos):
            if row["ImageID"] != image_id:
                continue
            key = f"b{int(Path(row['crop_file']).name[:2]) - 1:03d}"
            reference = np.asarray(Image.open(photos / "reference-crops" / row["crop_file"]))
            ours = _decode(outputs[key])
            assert ours.shape == reference.shape
            # JPEG (q95, 4:2:0 chroma) of the same pixels; a 1 px shift gives a mean of >= 5.8.
            assert np.abs(ours - reference).mean() < 3.0


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((0.25, 0.75, 0.5, 1.0), (25, 50, 75, 100)),
        ((0.101, 0.109, 0.0, 1.0), (10, 0, 11, 100)),  # under a pixel wide: widened to 1 px
        ((0.995, 1.0, 0.3, 0.3001), (99, 30, 100, 31)),  # at the right edge, 1 px high
        ((0.0, 1.0, 0.0, 1.0), (0, 0, 100, 100)),
    ],
)
def test_crop_rectangle_is_int_of_normalised_times_size_and_at_least_one_pixel(
    box: tuple[float, float, float, float], expected: tuple[int, int, int, int]
) -> None:
    assert crop_rectangle(box, 100, 100) == expected


@given(
    st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    st.integers(1, 5000),
    st.integers(1, 5000),
)
def test_crop_rectangles_equal_python_int_rule_for_boxes_of_a_pixel_or_more(
    corners: list[float], width: int, height: int
) -> None:
    xmin, xmax = sorted(corners[:2])
    ymin, ymax = sorted(corners[2:])
    rectangle = crop_rectangles(np.array([[xmin, xmax, ymin, ymax]]), width, height)[0]
    x0, y0, x1, y1 = int(xmin * width), int(ymin * height), int(xmax * width), int(ymax * height)
    assert 0 <= rectangle[0] < rectangle[2] <= width
    assert 0 <= rectangle[1] < rectangle[3] <= height
    if x0 < x1:
        assert (rectangle[0], rectangle[2]) == (x0, x1)
    if y0 < y1:
        assert (rectangle[1], rectangle[3]) == (y0, y1)


@pytest.mark.parametrize(
    ("rectangle", "crop_size", "expected"),
    [
        ((0, 0, 1638, 2293), 256, (183, 256)),
        ((0, 0, 600, 518), 256, (256, 221)),
        ((0, 0, 100, 40), 256, (100, 40)),  # never upscaled
        ((0, 0, 256, 256), 256, (256, 256)),
        ((0, 0, 3000, 2), 256, (256, 1)),  # the short side never rounds to 0
    ],
)
def test_output_longest_side_is_crop_size_never_upscaled(
    rectangle: tuple[int, ...], crop_size: int, expected: tuple[int, int]
) -> None:
    assert tuple(output_sizes(np.array([rectangle]), crop_size)[0]) == expected


@pytest.mark.parametrize(
    ("rectangles", "expected"),
    [
        ([], 8),  # 4096 px image alone: 4096 / 8 = 512 >= 256
        ([(0, 0, 2048, 100)], 8),  # longest side counts, not the short one
        ([(0, 0, 1024, 1024)], 4),
        ([(0, 0, 1023, 1023)], 2),  # 1023 / 4 < 256: 4 would lose resolution
        ([(0, 0, 600, 518), (0, 0, 3000, 3000)], 2),  # the smallest output decides
        ([(0, 0, 511, 300)], 1),
        ([(0, 0, 100, 100), (0, 0, 4000, 4000)], 1),  # a crop under crop_size: full decode
    ],
)
def test_draft_scale_keeps_min_of_crop_size_and_full_resolution(
    rectangles: list[tuple[int, ...]], expected: int
) -> None:
    array = np.array(rectangles, dtype=np.int64).reshape(-1, 4)
    assert draft_scale(4096, 3072, array, 256) == expected


@pytest.mark.parametrize(
    ("longest", "expected"),
    [(1, 1), (256, 1), (511, 1), (512, 2), (1023, 2), (1024, 4), (2048, 8), (4096, 16)],
)
def test_reduction_level_keeps_at_least_crop_size_pixels(longest: int, expected: int) -> None:
    levels = reduction_levels(np.array([[0, 0, longest, 1], [5, 0, 6, longest]]), 256)
    assert levels.tolist() == [expected, expected]


def test_region_reduce_is_aligned_to_the_image_origin() -> None:
    # Lossless noise, so any misaligned block would show; 512 px boxes reduce by 2 to 256 px.
    pixels = np.random.default_rng(0).integers(0, 256, (1000, 1200, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    whole = np.asarray(image.reduce(2))
    for x0, y0 in [(0, 0), (2, 4), (688, 488)]:
        rectangle = np.array([x0, y0, x0 + 512, y0 + 512])
        out = crops._render(image, rectangle, np.array([256, 256]), scale=1, level=2)
        assert (np.asarray(out) == whole[y0 // 2 : y0 // 2 + 256, x0 // 2 : x0 // 2 + 256]).all()


def test_draft_decoding_is_used_for_big_outputs_and_gives_the_same_sizes(
    photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = "07988525d97edf50"  # 1638 x 2293; its two Shorts boxes are >= 600 px
    source = (photos / "images" / f"{image_id}.jpg").read_bytes()
    boxes = _photo_boxes(photos)[image_id]
    requests = [CropRequest(f"b{i:03d}", *box) for i, box in enumerate(boxes)]
    drafted_sizes: list[tuple[int, int]] = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original_draft(self, mode, size)
        drafted_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    fast, size = render_crops(source, requests, crop_size=256, quality=90)
    # Decoded at 1/2: ceil(1638 / 2), ceil(2293 / 2); then twice at 1/8 for the completeness
    # check of image_decode (the file as is, and with noise before its end marker).
    assert drafted_sizes == [(819, 1147), (205, 287), (205, 287)]
    full, _ = render_crops(source, requests, crop_size=256, quality=90, allow_draft=False)
    assert len(drafted_sizes) == 5  # the full decode drafts nothing; its check does, twice
    assert size == (1638, 2293)
    for key in full:
        assert Image.open(io.BytesIO(fast[key])).size == Image.open(io.BytesIO(full[key])).size
        assert np.abs(_decode(fast[key]) - _decode(full[key])).mean() < 4.0
    assert Image.open(io.BytesIO(fast["img"])).size == (183, 256)


def test_small_crop_forbids_draft_so_its_pixels_follow_the_rule(photos: Path) -> None:
    image_id = "0c7b2e492da6ba02"  # 1109 x 832, penguins of 113-271 px: scale must stay 1
    source = (photos / "images" / f"{image_id}.jpg").read_bytes()
    boxes = _photo_boxes(photos)[image_id]
    requests = [CropRequest(f"b{i:03d}", *box) for i, box in enumerate(boxes)]
    rectangles = crop_rectangles(np.array(boxes), 1109, 832)
    assert draft_scale(1109, 832, rectangles, 256) == 1
    outputs, _ = render_crops(source, requests, crop_size=256, quality=95)
    image = Image.open(io.BytesIO(source))
    for request, box in zip(requests, boxes, strict=True):
        expected = np.asarray(crop_image(image, box)).astype(np.int16)
        if max(expected.shape[:2]) <= 256:
            assert np.abs(_decode(outputs[request.key]) - expected).mean() < 2.0


def test_render_is_deterministic() -> None:
    image = Image.radial_gradient("L").resize((640, 480)).convert("RGB")
    source = _jpeg(image)
    requests = [CropRequest("b000", 0.1, 0.9, 0.2, 0.8), CropRequest("x000", 0.0, 0.5, 0.0, 0.5)]
    assert render_crops(source, requests, 128, 90) == render_crops(source, requests, 128, 90)


def test_exif_orientation_is_ignored_as_open_images_boxes_use_stored_pixels() -> None:
    stored = np.zeros((60, 100, 3), dtype=np.uint8)
    stored[:, :50] = (255, 0, 0)  # left half red, right half blue, as stored
    stored[:, 50:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a viewer would show it 60 x 100
    source = _jpeg(Image.fromarray(stored), exif=exif)
    outputs, size = render_crops(source, [CropRequest("b000", 0.0, 0.4, 0.0, 1.0)], 256, 95)
    assert size == (100, 60)
    crop = Image.open(io.BytesIO(outputs["b000"]))
    assert crop.size == (40, 60)
    assert crop.getexif().get(0x0112) is None  # no tag: every viewer shows what was annotated
    red, green, blue = np.asarray(crop).reshape(-1, 3).mean(axis=0)
    assert red > 200 and blue < 50


def test_non_jpeg_and_greyscale_sources_render_as_rgb() -> None:
    grey = Image.linear_gradient("L").resize((300, 200))
    png = io.BytesIO()
    grey.save(png, "PNG")
    for source in (png.getvalue(), _jpeg(grey)):
        outputs, size = render_crops(source, [CropRequest("b000", 0.0, 1.0, 0.0, 0.5)], 128, 90)
        assert size == (300, 200)
        assert Image.open(io.BytesIO(outputs["b000"])).mode == "RGB"
        assert Image.open(io.BytesIO(outputs["b000"])).size == (128, 43)


@pytest.fixture(scope="module")
def photo_bytes(photos: Path) -> bytes:
    return (photos / "images" / "0c7b2e492da6ba02.jpg").read_bytes()


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda data: b"", "image_truncated"),
        (lambda data: data[: len(data) // 2], "image_truncated"),
        (lambda data: data[:400], "image_truncated"),  # cut inside the headers
        (lambda data: b"<html>404 photo unavailable</html>" * 20, "image_corrupt"),
        (lambda data: bytes(len(data)), "image_corrupt"),
    ],
    ids=["empty", "half", "headers-only", "html", "zeros"],
)
def test_bad_images_raise_image_error_with_reason(photo_bytes: bytes, corrupt, reason: str) -> None:
    with pytest.raises(ImageError) as caught:
        render_crops(corrupt(photo_bytes), [CropRequest("b000", 0.1, 0.2, 0.1, 0.2)], 256, 90)
    assert caught.value.reason == reason
    assert "0x" not in str(caught.value)  # no memory addresses: reject records are reproducible


def test_oversized_image_is_unsupported(
    photo_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # > 2x this many pixels: a "bomb"
    with pytest.raises(ImageError) as caught:
        render_crops(photo_bytes, [], 256, 90)
    assert caught.value.reason == "image_unsupported"


@pytest.mark.parametrize("keys", [["b000", "b000"], ["img"]])
def test_crop_keys_must_be_unique_and_not_the_root(photo_bytes: bytes, keys: list[str]) -> None:
    with pytest.raises(ValueError, match="unique"):
        render_crops(photo_bytes, [CropRequest(key, 0.1, 0.2, 0.1, 0.2) for key in keys], 256, 90)


def test_render_file_reads_the_image_and_names_a_missing_one(tmp_path: Path) -> None:
    source = Image.new("RGB", (40, 30), (10, 200, 30))
    buffer = io.BytesIO()
    source.save(buffer, "PNG")
    (tmp_path / "a.png").write_bytes(buffer.getvalue())
    request = [CropRequest("b000", 0.0, 0.5, 0.0, 0.5)]
    got = crops.render_file(str(tmp_path / "a.png"), request, 16, 90)
    assert got == render_crops(buffer.getvalue(), request, 16, 90)
    with pytest.raises(ImageError) as caught:
        crops.render_file(str(tmp_path / "b.png"), request, 16, 90)
    assert caught.value.reason == "image_missing" and "b.png" in caught.value.detail


def test_image_error_as_a_reject_row() -> None:
    error = ImageError("image_truncated", "x" * 2000)
    row = error.reject_row("validation", "gs://b/validation/abc.jpg", "abc")
    assert row == {
        "split": "validation",
        "file": "gs://b/validation/abc.jpg",
        "line": 0,
        "reason": "image_truncated",
        "raw": ("abc: " + "x" * 2000)[:1000],
    }
    assert len(row["raw"]) == 1000
