"""pyarrow schemas of every table the pipeline writes or passes between stages.

Coordinates are normalised to [0, 1] (Open Images convention); areas are fractions of the image.
"""

import pyarrow as pa

# Is* flags: 1 true, 0 false, -1 unknown (column absent, e.g. the V3 train file).
_FLAG = pa.int8()

# The ImageID rule (DESIGN "Boxes"), unanchored: an image_id becomes a file name and the
# WebDataset key of its sample, so no dots, slashes or spaces. Match it whole (fullmatch, or
# wrapped in ^...$).
IMAGE_ID_PATTERN = r"[A-Za-z0-9_-]{1,128}"

# Validated annotation rows, before grouping by image: one row per accepted input line.
ROWS = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),  # matches IMAGE_ID_PATTERN
        pa.field("label", pa.string(), nullable=False),
        pa.field("source", pa.string()),  # null when the file has no Source column
        pa.field("confidence", pa.float32()),  # null when the file has no Confidence column
        pa.field("xmin", pa.float64(), nullable=False),
        pa.field("xmax", pa.float64(), nullable=False),
        pa.field("ymin", pa.float64(), nullable=False),
        pa.field("ymax", pa.float64(), nullable=False),
        pa.field("is_occluded", _FLAG, nullable=False),
        pa.field("is_truncated", _FLAG, nullable=False),
        pa.field("is_group_of", _FLAG, nullable=False),
        pa.field("is_depiction", _FLAG, nullable=False),
        pa.field("is_inside", _FLAG, nullable=False),
        pa.field("file", pa.string(), nullable=False),  # source file name (basename)
        pa.field("line", pa.int64(), nullable=False),  # 1-based physical line; header is 1
    ]
)

# tables/boxes: every validated box, numbered within its image in (file, line) order.
# `kept` is False for boxes below --min_box_area; they take no part in mining.
BOXES = pa.schema(
    [
        *list(ROWS)[:2],
        pa.field("box_id", pa.int32(), nullable=False),
        *list(ROWS)[2:],
        pa.field("area", pa.float64(), nullable=False),
        pa.field("kept", pa.bool_(), nullable=False),
    ]
)

# tables/rejects: every input line that was not used, with the reason.
REJECTS = pa.schema(
    [
        pa.field("split", pa.string()),
        pa.field("file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),  # 0 when the reject is not a line
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ]
)

# tables/pairs (training pairs: image_box + accepted box_box) and tables/candidates
# (every box_box candidate, accepted or not). parent_box is -1 for the whole image.
PAIRS = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # "image_box" | "box_box"
        pa.field("parent_box", pa.int32(), nullable=False),
        pa.field("child_box", pa.int32(), nullable=False),
        pa.field("parent_label", pa.string()),  # null for the whole image
        pa.field("child_label", pa.string(), nullable=False),
        pa.field("containment", pa.float64(), nullable=False),  # area(c ∩ p) / area(c)
        pa.field("iou", pa.float64(), nullable=False),
    ]
)
CANDIDATES = PAIRS

# Partial statistics, summed across batches (stats.LabelPairCounts).
PAIR_COUNTS = pa.schema(
    [
        pa.field("parent_label", pa.string(), nullable=False),
        pa.field("child_label", pa.string(), nullable=False),
        pa.field("frequency", pa.int64(), nullable=False),  # candidate box pairs
        pa.field("parents_with_child", pa.int64(), nullable=False),  # P boxes with >= 1 C child
        pa.field("children_with_parent", pa.int64(), nullable=False),  # C boxes in >= 1 P box
    ]
)
# The IoU distribution of each label pair's candidate box pairs, as a sparse histogram of
# IOU_BINS equal bins over [0, 1]: bin b holds 0.01 b <= IoU < 0.01 (b + 1), the last bin also
# IoU = 1. Only non-empty bins have a row; counts add across batches like PAIR_COUNTS.
IOU_BINS = 100
PAIR_IOU_COUNTS = pa.schema(
    [
        pa.field("parent_label", pa.string(), nullable=False),
        pa.field("child_label", pa.string(), nullable=False),
        pa.field("iou_bin", pa.int32(), nullable=False),  # 0..IOU_BINS-1
        pa.field("pairs", pa.int64(), nullable=False),  # candidate box pairs in the bin
    ]
)
LABEL_COUNTS = pa.schema(
    [
        pa.field("label", pa.string(), nullable=False),
        pa.field("kept_boxes", pa.int64(), nullable=False),
    ]
)

# tables/label_pairs: the statistics of every candidate label pair of the stats split.
LABEL_PAIRS = pa.schema(
    [
        pa.field("parent_label", pa.string(), nullable=False),
        pa.field("child_label", pa.string(), nullable=False),
        pa.field("parent_name", pa.string(), nullable=False),
        pa.field("child_name", pa.string(), nullable=False),
        pa.field("frequency", pa.int64(), nullable=False),
        pa.field("parents_with_child", pa.int64(), nullable=False),
        pa.field("parent_boxes", pa.int64(), nullable=False),  # kept boxes of label P
        pa.field("proportion", pa.float64(), nullable=False),  # parents_with_child / parent_boxes
        pa.field("children_with_parent", pa.int64(), nullable=False),  # C boxes in >= 1 P box
        pa.field("child_boxes", pa.int64(), nullable=False),  # kept boxes of label C
        # Median IoU of the candidate box pairs, interpolated within its 0.01-wide bin.
        pa.field("iou_median", pa.float64(), nullable=False),
        # Share of the candidate box pairs with IoU >= 0.5 (exact: 0.5 is a bin edge).
        pa.field("near_duplicate_share", pa.float64(), nullable=False),
        pa.field("isa", pa.bool_(), nullable=False),  # related by Subcategory (is-a guard)
        # One object under two labels: iou_median >= --same_object_iou (never accepted).
        pa.field("same_object", pa.bool_(), nullable=False),
        pa.field("accepted", pa.bool_(), nullable=False),
    ]
)


# trees/label_tree.parquet: one row per label in the label tree (the virtual root included).
LABEL_TREE = pa.schema(
    [
        pa.field("label", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("parent", pa.string()),  # null only for the virtual root "scene"
        pa.field("depth", pa.int32(), nullable=False),  # root 0, its children 1, ...
        pa.field("frequency", pa.int64()),  # of the kept (parent, label) pair; null at depth <= 1
        pa.field("proportion", pa.float64()),
        pa.field("kept_boxes", pa.int64(), nullable=False),  # in the stats split
    ]
)

# trees/label_closure.parquet: the evaluation ground truth (DESIGN "Ground truth"): one row per
# (label, descendant) of the label graph's transitive closure, every label its own descendant.
LABEL_CLOSURE = pa.schema(
    [
        pa.field("label", pa.string(), nullable=False),
        pa.field("descendant", pa.string(), nullable=False),
        pa.field("label_name", pa.string(), nullable=False),
        pa.field("descendant_name", pa.string(), nullable=False),
        pa.field("distance", pa.int32(), nullable=False),  # edges on a shortest path; 0: itself
    ]
)

# tables/image_trees: each kept box's parent in its image's tree (DESIGN "Per-image tree").
IMAGE_TREES = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("box_id", pa.int32(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("parent_box", pa.int32(), nullable=False),  # -1: the whole image
        pa.field("depth", pa.int32(), nullable=False),  # 1 under the image, 2 under a box, ...
    ]
)

# tables/cross_pairs: scene I entails a box of one of its labels from another image.
CROSS_PAIRS = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("image_id", pa.string(), nullable=False),  # the scene (parent)
        pa.field("label", pa.string(), nullable=False),
        pa.field("slot", pa.int32(), nullable=False),  # 0..cross_image_samples-1 per label
        pa.field("source_image_id", pa.string(), nullable=False),
        pa.field("source_box_id", pa.int32(), nullable=False),
        pa.field("key", pa.string(), nullable=False),  # "xNNN" inside the scene's sample
    ]
)

TABLE_SCHEMAS: dict[str, pa.Schema] = {
    "boxes": BOXES,
    "rejects": REJECTS,
    "pairs": PAIRS,
    "candidates": CANDIDATES,
    "label_pairs": LABEL_PAIRS,
    "image_trees": IMAGE_TREES,
    "cross_pairs": CROSS_PAIRS,
}
