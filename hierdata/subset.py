"""The --image_ids subset: which images a run keeps, read once per worker from a small file.

The file names image ids one per line, or is a CSV with an ImageID column (an Open Images
image list such as validation-images.csv works as it is).
"""

import re

import pyarrow as pa
import pyarrow.compute as pc

from hierdata.errors import InputError
from hierdata.io import read_bytes
from schemas.tables import IMAGE_ID_PATTERN

_IMAGE_ID = re.compile(IMAGE_ID_PATTERN)


def read_image_ids(url: str) -> pa.Array:
    """The distinct image ids of a subset file, as a string array.

    Raises:
        InputError: the file is missing, or names no valid image id.
    """
    lines = [line.strip() for line in read_bytes(url).decode("utf-8-sig").splitlines()]
    lines = [line for line in lines if line]
    column = 0
    if lines and "," in lines[0]:  # a CSV: the ImageID column (first when no header names it)
        header = [name.strip().strip('"') for name in lines[0].split(",")]
        if "ImageID" in header:
            column = header.index("ImageID")
            lines = lines[1:]
    ids = {line.split(",")[column].strip().strip('"') for line in lines}
    valid = sorted(i for i in ids if _IMAGE_ID.fullmatch(i))
    if not valid:
        raise InputError(
            f"--image_ids {url}: no image id found (one per line, or an ImageID column)"
        )
    return pa.array(valid, pa.string())


def keep_images(rows: pa.Table, image_ids: pa.Array) -> pa.Table:
    """The rows (any table with an image_id column) of the images in `image_ids`."""
    return rows.filter(pc.is_in(rows.column("image_id"), value_set=image_ids))
