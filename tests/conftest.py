"""Shared fixtures: the real Open Images files in ../shared/data and small helpers."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Open Images fixtures not found at {SHARED_DATA} (../shared/data)")
    return SHARED_DATA
