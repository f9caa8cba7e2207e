"""Helpers of the audit tests: per-split counts, accepted pairs, and the page in headless
Chromium (skipped where it is not installed)."""

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def per_split(table: pa.Table, mask=None) -> dict[str, int]:
    """{split: rows} of a table, of the rows where mask holds when given."""
    if mask is not None:
        table = table.filter(mask)
    return dict(Counter(table.column("split").to_pylist()))


def accepted_pairs(label_pairs: pa.Table) -> set[tuple[str, str]]:
    """(parent_label, child_label) of the accepted rows."""
    rows = label_pairs.filter(label_pairs["accepted"])
    return set(zip(rows["parent_label"].to_pylist(), rows["child_label"].to_pylist(), strict=True))


def open_in_chromium(index: Path, work: Path) -> tuple[str, str, Path]:
    """(DOM after load, browser log, screenshot) of a report page opened from file://."""
    if CHROMIUM is None:
        pytest.skip(
            "headless Chromium not found: install Debian's `chromium` "
            "(apt-get install -y chromium); .ci/run installs it"
        )
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={work / 'profile'}",
        "--hide-scrollbars",
        "--window-size=1280,2000",
        "--enable-logging=stderr",
        "--v=0",
    ]
    shot = work / "screenshot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", index.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=5000", "--dump-dom", index.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dom.stdout, dom.stderr, shot


def assert_page_ok(index: Path, work: Path, min_images: int) -> None:
    dom, log, shot = open_in_chromium(index, work)
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', html_tag))
    assert attrs["ready"] == "1", html_tag
    assert attrs["errors"] == "0" and attrs["broken-images"] == "0", html_tag
    assert int(attrs["images"]) >= min_images
    assert "CONSOLE" not in log, [line for line in log.splitlines() if "CONSOLE" in line]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20  # a blank or single-colour page is ~0
    assert (pixels < 100).mean() > 0.02  # dark text and the header band are drawn
