"""Strict decoding (DESIGN "Qualities": no truncated data decoded to filler; correct 8-bit RGB)."""

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from hierdata.crops import CropRequest, render_crops
from hierdata.image_decode import decode_rgb, jpeg_layout, open_image, to_rgb
from hierdata.image_files import ImageError

EOI = b"\xff\xd9"


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> bytes:
    return (shared_data / "openimages-photos" / "images" / "001a4ddbc29f989a.jpg").read_bytes()


@pytest.fixture(scope="module")
def progressive(photo: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(buffer, "JPEG", quality=90, progressive=True)
    return buffer.getvalue()


def _decode(data: bytes, scale: int = 1) -> np.ndarray:
    image, _ = decode_rgb(data, open_image(data), scale)
    return np.asarray(image)


def _reason(data: bytes, scale: int = 1) -> str:
    with pytest.raises(ImageError) as caught:
        _decode(data, scale)
    return caught.value.reason


def _scan_starts(data: bytes) -> list[int]:
    return [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]


def _taller(data: bytes, extra_rows: int) -> bytes:
    """The JPEG with a frame header that promises more rows than its data holds."""
    sof = data.index(b"\xff\xc0")
    height = struct.unpack(">H", data[sof + 5 : sof + 7])[0]
    return data[: sof + 5] + struct.pack(">H", height + extra_rows) + data[sof + 7 :]


def test_pillow_alone_decodes_a_padded_truncated_jpeg_to_grey(photo: bytes) -> None:
    """The failure this module exists for: libjpeg fills the missing blocks with grey."""
    padded = photo[: len(photo) // 3] + EOI
    image = Image.open(io.BytesIO(padded))
    image.load()
    assert np.mean(np.all(np.asarray(image) == 128, axis=2)) > 0.5


@pytest.mark.parametrize("scale", [1, 2, 8])
@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 3] + EOI,  # the "two thirds grey"
        lambda data: data[: len(data) - 2000] + EOI,  # a little missing
        lambda data: data[:-40] + EOI,  # the last few blocks only
        lambda data: _taller(data, 200),  # the header promising more pixels
        lambda data: _taller(data, 8),
    ],
    ids=["third", "2000-bytes", "40-bytes", "taller-200", "taller-8"],
)
def test_short_jpeg_data_is_truncated_even_with_an_end_marker(photo, damage, scale) -> None:
    assert _reason(damage(photo), scale) == "image_truncated"


def test_progressive_jpeg_cut_between_or_inside_scans_is_truncated(progressive: bytes) -> None:
    starts = _scan_starts(progressive)
    assert len(starts) > 3
    assert _reason(progressive[: starts[3]] + EOI) == "image_truncated"  # later scans missing
    middle_of_last = (starts[-1] + len(progressive)) // 2
    assert _reason(progressive[:middle_of_last] + EOI) == "image_truncated"


def test_complete_jpegs_decode_to_the_same_pixels_as_pillow(photo, progressive) -> None:
    for data in (photo, progressive):
        plain = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert np.array_equal(_decode(data), plain)
        # Bytes after the end marker, and padding before it, are not missing data.
        assert np.array_equal(_decode(data + b"trailing bytes"), plain)
        end = data.rindex(EOI)
        assert np.array_equal(_decode(data[:end] + bytes(64) + data[end:]), plain)


def test_jpeg_layout_finds_the_end_of_the_scans(photo, progressive) -> None:
    assert jpeg_layout(photo).eoi == len(photo) - 2
    assert not jpeg_layout(photo).progressive
    assert jpeg_layout(progressive).progressive


def test_a_truncated_jpeg_without_end_marker_is_truncated(photo: bytes) -> None:
    assert _reason(photo[: len(photo) // 2]) == "image_truncated"


def test_sixteen_bit_grey_is_scaled_not_saturated() -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    image = open_image(buffer.getvalue())
    assert image.mode.startswith("I;16")
    got = _decode(buffer.getvalue())
    assert got[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (got[..., 0] == got[..., 2]).all()
    # Pillow's own conversion clips: every value above 255 becomes white.
    assert np.asarray(Image.fromarray(values).convert("RGB"))[0, 1:, 0].tolist() == [255] * 3


def test_mode_i_within_sixteen_bits_is_scaled_beyond_is_unsupported() -> None:
    assert np.asarray(to_rgb(Image.fromarray(np.array([[65535, 0]], np.int32))))[
        0, :, 0
    ].tolist() == [255, 0]
    with pytest.raises(ImageError) as caught:
        to_rgb(Image.fromarray(np.array([[70000]], np.int32)))
    assert caught.value.reason == "image_unsupported"


def test_float_images_are_unsupported_not_black() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4), 0.75, np.float32)).save(buffer, "TIFF")
    assert _reason(buffer.getvalue()) == "image_unsupported"


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("CMYK", "JPEG"), ("P", "PNG"), ("LA", "PNG"), ("L", "JPEG"), ("RGBA", "PNG"), ("1", "PNG")],
)
def test_other_modes_become_eight_bit_rgb(mode: str, fmt: str) -> None:
    source = Image.new("RGB", (32, 24), (200, 40, 90)).convert(mode)
    buffer = io.BytesIO()
    source.save(buffer, fmt)
    outputs, size = render_crops(
        buffer.getvalue(), [CropRequest("b000", 0.0, 0.5, 0.0, 0.5)], 16, 95
    )
    crop = Image.open(io.BytesIO(outputs["b000"]))
    assert size == (32, 24) and crop.mode == "RGB"
    # The crop's mean colour is the source quarter's (within JPEG and resampling error).
    expected = np.asarray(source.convert("RGB"), float)[:12, :16].mean(axis=(0, 1))
    assert np.abs(np.asarray(crop, float).mean(axis=(0, 1)) - expected).max() <= 12


def test_truncated_image_recovery_must_stay_off(photo: bytes, monkeypatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        open_image(photo)
