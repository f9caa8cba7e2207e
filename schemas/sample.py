"""The JSON schema of a shard sample's metadata (the `json` entry of each WebDataset sample).

One sample per source image, key = ImageID; entries img.jpg, bNNN.jpg, xNNN.jpg and json.
"""

from schemas.tables import IMAGE_ID_PATTERN

ROOT_KEY = "img"  # the whole image: parent of every image_box and cross_image pair
KINDS = ("image_box", "box_box", "cross_image")
FIXED_MTIME = 0  # every tar entry's mtime, so reruns are byte-identical


def box_key(box_id: int) -> str:
    """Entry key of an image's own box: b000, b001, ... (more digits past 999)."""
    return f"b{box_id:03d}"


def cross_key(index: int) -> str:
    """Entry key of the index-th cross-image crop this sample carries: x000, x001, ..."""
    return f"x{index:03d}"


_BOX = {
    "type": "object",
    "required": ["key", "box_id", "label", "name", "xmin", "xmax", "ymin", "ymax", "is_group_of"],
    "properties": {
        "key": {"type": "string", "pattern": "^b[0-9]{3,}$"},
        "box_id": {"type": "integer", "minimum": 0},
        "label": {"type": "string"},
        "name": {"type": "string"},  # the label's display name (class descriptions)
        "xmin": {"type": "number"},
        "xmax": {"type": "number"},
        "ymin": {"type": "number"},
        "ymax": {"type": "number"},
        "is_occluded": {"type": "integer"},
        "is_truncated": {"type": "integer"},
        "is_group_of": {"type": "integer"},
        "is_depiction": {"type": "integer"},
        "is_inside": {"type": "integer"},
        "tree_parent": {"type": "string"},  # "img" or "bNNN": the per-image tree
    },
}

_CROSS = {
    "type": "object",
    "required": ["key", "label", "name", "source_image_id", "source_box_id"],
    "properties": {
        "key": {"type": "string", "pattern": "^x[0-9]{3,}$"},
        "label": {"type": "string"},
        "name": {"type": "string"},  # the label's display name
        "source_image_id": {"type": "string"},
        "source_box_id": {"type": "integer", "minimum": 0},
        "xmin": {"type": "number"},
        "xmax": {"type": "number"},
        "ymin": {"type": "number"},
        "ymax": {"type": "number"},
    },
}

SAMPLE_METADATA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "HierOpenImages shard sample metadata",
    "type": "object",
    "required": [
        "image_id",
        "split",
        "width",
        "height",
        "labels",
        "label_names",
        "boxes",
        "cross",
        "pairs",
    ],
    "properties": {
        "image_id": {"type": "string", "pattern": f"^{IMAGE_ID_PATTERN}$"},
        "split": {"type": "string"},
        "width": {"type": "integer"},  # source image as stored, pixels (EXIF orientation ignored)
        "height": {"type": "integer"},
        "labels": {"type": "array", "items": {"type": "string"}},  # sorted, kept boxes only
        # display names of `labels`, in the same order (the label id when it has none)
        "label_names": {"type": "array", "items": {"type": "string"}},
        "boxes": {"type": "array", "items": _BOX},  # kept boxes, by box_id
        "cross": {"type": "array", "items": _CROSS},  # cross-image crops, by key
        "pairs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["parent", "child", "kind"],
                "properties": {
                    "parent": {"type": "string"},  # "img" | "bNNN"
                    "child": {"type": "string"},  # "bNNN" | "xNNN"
                    "kind": {"enum": list(KINDS)},
                },
            },
        },
    },
}
