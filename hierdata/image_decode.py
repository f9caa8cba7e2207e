"""Strict image decoding: Pillow, plus the checks that keep short data from becoming filler.

Pillow raises on truncated PNG, GIF, BMP, TIFF and WebP data (ImageFile.LOAD_TRUNCATED_IMAGES
stays False). A JPEG is the exception: when its entropy-coded data ends early but an end marker
(EOI) follows, as in a truncated file padded with FF D9 or a header that promises more rows
than the data holds, libjpeg only warns ("Premature end of JPEG file"), Pillow ignores the
warning and the missing blocks decode as flat grey. Two checks catch that:

- Structure: the marker segments are walked (no entropy decoding): every component must be in
  a scan and, for a progressive JPEG, every coefficient of every component must be in a scan
  that completes it (Al = 0). A progressive file cut between scans fails here.
- Entropy data length: the JPEG is decoded a second time with 256 bytes of noise inserted just
  before its EOI. When the scan data is complete the decoder never reads them (extraneous bytes
  before a marker are skipped) and the pixels are identical; when it is short, the decoder
  consumes the noise as coefficients and the pixels differ. A baseline JPEG is compared at the
  1/8 draft scale (DC coefficients only, yet every block's entropy data is decoded), a
  progressive one at full scale (its last scan may refine only AC coefficients). The check
  reuses the main decode when that ran at the same scale.

Modes: 16-bit greyscale (I;16*, and I within 0..65535) is scaled to 8 bits (round(v / 257)),
never clipped; 32-bit float (F) has no defined 8-bit scale and is rejected; CMYK, P, PA, LA,
RGBA, L, 1 and the other Pillow modes use Pillow's RGB conversion (alpha dropped).
"""

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from hierdata.image_files import ImageError

# What PIL raises for bad image data; anything else is a bug and should surface.
PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
_MAX_DRAFT_SCALE = 8  # libjpeg decodes at 1/2, 1/4 or 1/8 of full size

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0-7 carry no length
_SOF_SEQUENTIAL = {0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xC9, 0xCB, 0xCD, 0xCF}
_SOF_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}
# The next marker after entropy-coded data: FF followed by neither a stuffed 00, an RSTn
# (part of the data) nor another FF (fill).
_MARKER_AFTER_DATA = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")
# Never FF, so the noise cannot form a marker.
_NOISE = bytes((index * 151 + 17) % 251 for index in range(256))


def _strict_loading() -> None:
    """Refuse to run with Pillow's truncated-image recovery on (it decodes filler silently)."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be False for strict decoding")


def image_error(err: Exception) -> ImageError:
    """The ImageError for an exception PIL raised while identifying or decoding an image."""
    if isinstance(err, UnidentifiedImageError):
        # Its message names the in-memory buffer's address; keep reject records reproducible.
        return ImageError("image_corrupt", "not a recognised image format")
    message = str(err)
    if isinstance(err, Image.DecompressionBombError) or "not available" in message:
        return ImageError("image_unsupported", message)  # too many pixels, or a missing codec
    if "truncated" in message.lower():
        return ImageError("image_truncated", message)
    return ImageError("image_corrupt", message)


def open_image(image_bytes: bytes) -> Image.Image:
    """Identify an image (header only). Raises ImageError."""
    _strict_loading()
    if not image_bytes:
        raise ImageError("image_truncated", "empty file")
    try:
        return Image.open(io.BytesIO(image_bytes))
    except PIL_ERRORS as err:
        raise image_error(err) from err


@dataclass(frozen=True)
class JpegLayout:
    """What the marker walk of a JPEG found."""

    progressive: bool
    eoi: int  # offset of the EOI marker that ends the image's last scan


def jpeg_layout(data: bytes) -> JpegLayout:
    """Walk a JPEG's marker segments (skipping entropy-coded data) and check scan coverage.

    Raises:
        ImageError: image_truncated when the data ends before an EOI, or when a component or
            (progressive) a coefficient is in no scan that completes it; image_corrupt when it
            is not a JPEG or a segment is malformed.
    """
    if data[:2] != b"\xff\xd8":
        raise ImageError("image_corrupt", "not a JPEG (no start-of-image marker)")
    position, frame, scans = 2, None, []
    while True:
        if position + 2 > len(data):
            raise ImageError("image_truncated", "JPEG data ends before its end marker")
        if data[position] != 0xFF:
            raise ImageError("image_corrupt", f"JPEG marker expected at byte {position}")
        while position + 1 < len(data) and data[position + 1] == 0xFF:
            position += 1  # fill bytes before a marker
        marker = data[position + 1] if position + 1 < len(data) else None
        if marker == _EOI:
            break
        if marker in _STANDALONE or marker == _SOI:
            position += 2
            continue
        if marker is None or position + 4 > len(data):
            raise ImageError("image_truncated", "JPEG data ends inside a marker")
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        segment = data[position + 4 : position + 2 + length]
        if length < 2 or len(segment) != length - 2:
            raise ImageError("image_truncated", "JPEG data ends inside a marker segment")
        position += 2 + length
        if marker in _SOF_SEQUENTIAL | _SOF_PROGRESSIVE:
            frame = (marker in _SOF_PROGRESSIVE, _frame_components(segment))
        elif marker == _SOS:
            scans.append(_scan(segment))
            found = _MARKER_AFTER_DATA.search(data, position)
            if found is None:
                raise ImageError("image_truncated", "JPEG scan data ends without a marker")
            position = found.start()
    if frame is None or not scans:
        raise ImageError("image_truncated", "JPEG without a frame or scan before its end marker")
    progressive, components = frame
    _check_coverage(progressive, components, scans)
    return JpegLayout(progressive, position)


def _frame_components(segment: bytes) -> tuple[int, ...]:
    if len(segment) < 6 or len(segment) < 6 + 3 * segment[5]:
        raise ImageError("image_corrupt", "JPEG frame header too short")
    return tuple(segment[6 + 3 * index] for index in range(segment[5]))


def _scan(segment: bytes) -> tuple[tuple[int, ...], int, int, int]:
    """(component ids, Ss, Se, Al) of a scan header."""
    count = segment[0] if segment else 0
    if count == 0 or len(segment) < 1 + 2 * count + 3:
        raise ImageError("image_corrupt", "JPEG scan header too short")
    ids = tuple(segment[1 + 2 * index] for index in range(count))
    start, end, approximation = segment[1 + 2 * count : 4 + 2 * count]
    return ids, start, end, approximation & 0x0F


def _check_coverage(progressive: bool, components: tuple[int, ...], scans: list) -> None:
    """Every component in a scan; progressive: each of its 64 coefficients completed (Al=0)."""
    for component in components:
        done = np.zeros(64, bool)
        for ids, start, end, approximation in scans:
            if component not in ids:
                continue
            if not progressive:
                done[:] = True
            elif approximation == 0:
                done[start : end + 1] = True
        if not done.all():
            missing = "coefficients" if progressive and done.any() else "scan"
            raise ImageError(
                "image_truncated", f"JPEG component {component} has no complete {missing} data"
            )


def _load(image: Image.Image, scale: int) -> tuple[Image.Image, int]:
    """Load pixels, at 1/scale for a JPEG; returns the image and the scale it got."""
    if scale > 1:
        width, height = image.size
        drafted = image.draft("RGB", (width // scale, height // scale))
        # draft() returns the full image's extent in drafted pixels (None: no draft for this
        # format); width / extent is the scale libjpeg will decode at.
        scale = round(width / drafted[1][2]) if drafted else 1
    try:
        image.load()
    except PIL_ERRORS as err:
        raise image_error(err) from err
    return image, scale


def _decoded_at(data: bytes, scale: int) -> Image.Image | None:
    """The image decoded at 1/scale, or None when it cannot be decoded."""
    try:
        return _load(open_image(data), scale)[0]
    except ImageError:
        return None


def check_jpeg_complete(data: bytes, decoded: Image.Image, scale: int) -> None:
    """Raise ImageError("image_truncated") when a JPEG's data ends before the image does.

    Args:
        data: the JPEG file.
        decoded: its main decode (before any mode conversion), at 1/scale.
    """
    layout = jpeg_layout(data)
    check_scale = 1 if layout.progressive else _MAX_DRAFT_SCALE
    reference = decoded if scale == check_scale else _decoded_at(data, check_scale)
    noisy = _decoded_at(data[: layout.eoi] + _NOISE + data[layout.eoi :], check_scale)
    if (
        reference is None
        or noisy is None
        or noisy.size != reference.size
        or noisy.mode != reference.mode
        or noisy.tobytes() != reference.tobytes()
    ):
        raise ImageError(
            "image_truncated", "JPEG scan data ends before the image does (end marker too early)"
        )


def _scale_16_bit(values: np.ndarray) -> Image.Image:
    """Greyscale 0..65535 -> L 0..255 by round(v / 257), so 65535 is 255 and nothing clips."""
    wide = values.astype(np.uint32)
    return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")


def to_rgb(image: Image.Image) -> Image.Image:
    """A loaded image as 8-bit RGB, scaled correctly, never saturated. Raises ImageError."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ImageError("image_unsupported", f"mode {mode} with values beyond 16 bits")
        return _scale_16_bit(values).convert("RGB")
    if mode == "F":
        raise ImageError("image_unsupported", "32-bit float pixels have no defined 8-bit scale")
    try:
        return image.convert("RGB")
    except ValueError as err:  # a mode with no RGB conversion
        raise ImageError("image_unsupported", f"mode {mode}: {err}") from err


def decode_rgb(data: bytes, image: Image.Image, scale: int) -> tuple[Image.Image, int]:
    """Decode an opened image strictly, at 1/scale for a JPEG, as 8-bit RGB.

    Args:
        data: the file's bytes (for the JPEG completeness check).
        image: open_image(data), not loaded yet.
        scale: the draft scale asked for (1, 2, 4 or 8).
    Returns:
        (the RGB image, the scale it was decoded at).
    Raises:
        ImageError: image_truncated, image_corrupt or image_unsupported.
    """
    is_jpeg = image.format == "JPEG" or (image.format == "MPO" and data[:2] == b"\xff\xd8")
    image, scale = _load(image, scale)
    if is_jpeg:
        check_jpeg_complete(data, image, scale)
    return to_rgb(image), scale
