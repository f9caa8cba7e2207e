"""Cross-image sampling (DESIGN "Rules", Cross-image): per-label reservoirs of boxes
(reservoirs.py) and, for each (image, label), the boxes of that label from other images that
the scene entails (draw.py), both reproducible on any runner and worker count.
"""

from hierdata.cross_image.draw import sample_cross_image
from hierdata.cross_image.reservoirs import (
    RESERVOIRS,
    Reservoir,
    bucket_reservoirs,
    merge_reservoirs,
    reservoirs_from_table,
    reservoirs_to_table,
)

__all__ = [
    "RESERVOIRS",
    "Reservoir",
    "bucket_reservoirs",
    "merge_reservoirs",
    "reservoirs_from_table",
    "reservoirs_to_table",
    "sample_cross_image",
]
