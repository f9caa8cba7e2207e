"""The synthetic demo dataset: Open Images-format annotations and photos with a known part-of
truth (DESIGN "Synthetic demo dataset").

Modules: taxonomy (labels and their true relations), annotations (one split's boxes, with an
adversarial piece per mining rule), dataset (the CSV and JSON files), canvas and drawings (how
each label looks), images (the JPEG photos). The names below are the package's public surface.
"""

from hierdata.synth.annotations import (
    DEFAULT_IMAGES_PER_SPLIT,
    SCENES,
    SPLITS,
    SplitAnnotations,
    generate_split,
    image_ids,
)
from hierdata.synth.dataset import (
    BBOX_COLUMNS,
    CLASS_DESCRIPTIONS,
    HIERARCHY,
    MALFORMED_ROWS,
    bbox_csv,
    write_synthetic_dataset,
)
from hierdata.synth.images import image_size, render_image, write_synthetic_images
from hierdata.synth.taxonomy import (
    ROOT_LABEL,
    SUBCATEGORIES,
    TAXONOMY,
    SynthLabel,
    hierarchy,
    true_part_of_pairs,
)

__all__ = [
    "BBOX_COLUMNS",
    "CLASS_DESCRIPTIONS",
    "DEFAULT_IMAGES_PER_SPLIT",
    "HIERARCHY",
    "MALFORMED_ROWS",
    "ROOT_LABEL",
    "SCENES",
    "SPLITS",
    "SUBCATEGORIES",
    "TAXONOMY",
    "SplitAnnotations",
    "SynthLabel",
    "bbox_csv",
    "generate_split",
    "hierarchy",
    "image_ids",
    "image_size",
    "render_image",
    "true_part_of_pairs",
    "write_synthetic_dataset",
    "write_synthetic_images",
]
