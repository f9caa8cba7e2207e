"""Fixtures of the cross-image tests."""

import pyarrow as pa
import pytest

from tests.hierdata.cross_image.helpers import random_boxes


@pytest.fixture(scope="module")
def two_splits() -> pa.Table:
    return pa.concat_tables(
        [random_boxes(1, 150, 1200, 6, "train"), random_boxes(2, 60, 400, 6, "validation")]
    )
