"""The contracts between stages: pyarrow schemas of every table and the output layout.

Every writer and reader imports from here; nothing else defines a column or a file name.
"""

from schemas.layout import OutputLayout
from schemas.tables import (
    BOXES,
    CANDIDATES,
    LABEL_COUNTS,
    LABEL_PAIRS,
    PAIR_COUNTS,
    PAIR_IOU_COUNTS,
    PAIRS,
    REJECTS,
    ROWS,
    TABLE_SCHEMAS,
)

__all__ = [
    "BOXES",
    "CANDIDATES",
    "LABEL_COUNTS",
    "LABEL_PAIRS",
    "PAIR_COUNTS",
    "PAIR_IOU_COUNTS",
    "PAIRS",
    "REJECTS",
    "ROWS",
    "TABLE_SCHEMAS",
    "OutputLayout",
]
