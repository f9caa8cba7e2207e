"""The report warns and shows: headline, page order, legible heatmaps, one tree label
placement, the child's box on the parent crop, --out for read-only outputs, 900 px."""

import io
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from hierdata import trees
from hierdata.audit import galleries, plots
from hierdata.audit.__main__ import main as audit_main

from .helpers import CHROMIUM


@pytest.mark.parametrize(
    ("where", "expected"), [(0.0, "white"), (0.3, "white"), (0.85, "black"), (1.0, "black")]
)
def test_heatmap_numbers_take_the_colour_that_reads_on_their_cell(where, expected):
    """viridis runs from dark purple (white text) to light yellow (black text)."""
    assert plots.text_colour(colormaps["viridis"](where)) == expected


def test_heatmaps_are_900_px_wide_so_their_numbers_keep_their_size(demo_output):
    out, stats = demo_output
    png = out / "report" / stats["plots"]["thresholds"]
    with Image.open(png) as image:
        assert image.width == 900
        assert image.height > image.width  # the three panels are stacked, not side by side


def test_every_tree_label_has_the_same_placement():
    tree = nx.DiGraph()
    tree.add_node(trees.ROOT, name="scene", depth=0)
    for label, parent, depth in (("a", trees.ROOT, 1), ("b", "a", 2), ("c", "a", 2)):
        tree.add_node(label, name=label.upper(), depth=depth)
        tree.add_edge(parent, label)
    figure = plots.tree_figure(tree)
    positions = plots._layered_positions(tree)
    texts = {t.get_text(): t for t in figure.axes[0].texts}
    placements = set()
    for label, (x, y) in positions.items():
        text = texts[tree.nodes[label]["name"]]
        tx, ty = text.get_position()
        placements.add((round(tx - x, 6), round(ty - y, 6), text.get_ha(), text.get_va()))
    # internal (scene, A) and leaf (B, C) labels alike
    assert placements == {(*plots.TREE_LABEL_OFFSET, "left", "bottom")}


def test_the_child_box_is_drawn_where_it_lies_in_the_parent():
    parent = {"xmin": 0.2, "xmax": 0.6, "ymin": 0.0, "ymax": 0.5}
    child = {"xmin": 0.3, "xmax": 0.5, "ymin": 0.25, "ymax": 0.75}  # sticks out at the bottom
    within = galleries.child_within_parent(parent, child)
    assert within == pytest.approx((0.25, 0.5, 0.75, 1.0))
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), (128, 128, 128)).save(buffer, format="JPEG")
    drawn = np.asarray(Image.open(io.BytesIO(galleries.outline_child(buffer.getvalue(), within))))
    red = (drawn[..., 0] > 200) & (drawn[..., 1] < 80)
    rows, columns = np.nonzero(red)
    # within a pixel (PIL rounds the corners down)
    assert (columns.min(), columns.max()) == pytest.approx((0.25 * 199, 0.75 * 199), abs=1)
    assert (rows.min(), rows.max()) == pytest.approx((0.5 * 99, 99), abs=1)
    assert not red[:40].any()  # nothing above the child's top edge


def test_galleries_show_the_child_box_on_the_parent(demo_output):
    out, stats = demo_output
    examples = [e for pair in stats["gallery"]["pairs"] for e in pair["examples"]]
    assert examples
    for example in examples:
        assert (out / "report" / example["outlined_src"]).is_file()
    page = (out / "report" / "index.html").read_text()
    assert page.count('alt="child box on the parent crop"') == len(examples)


def test_headline_warns_and_the_tree_comes_before_the_long_tables(demo_output):
    out, _ = demo_output
    page = (out / "report" / "index.html").read_text()
    sections = re.findall(r'<section id="([a-z-]+)"', page)
    assert sections[:2] == ["summary", "tree"]
    assert sections.index("tree") < sections.index("rejects") < sections.index("run-details")
    headline = page[: page.index('<section id="tree"')]
    assert "images missing" in headline and "is-a guard" in headline.lower()
    assert headline.index("images missing") < page.index("Resolved options")


def test_a_read_only_output_is_audited_into_out(demo_output, tmp_path, capsys):
    source, _ = demo_output
    frozen = tmp_path / "frozen"
    shutil.copytree(source, frozen, ignore=shutil.ignore_patterns("report"))
    before = sorted(str(p.relative_to(frozen)) for p in frozen.rglob("*"))
    for path in [frozen, *frozen.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        report = tmp_path / "elsewhere"
        assert audit_main([str(frozen), "--out", str(report)]) == 0
        assert (report / "index.html").is_file() and (report / "stats.json").is_file()
        assert str(report / "index.html") in capsys.readouterr().out
        assert sorted(str(p.relative_to(frozen)) for p in frozen.rglob("*")) == before
    finally:
        for path in [frozen, *frozen.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_the_page_fits_900_px(demo_output, tmp_path):
    if CHROMIUM is None:
        pytest.skip("headless Chromium not found (apt-get install -y chromium)")
    out, _ = demo_output
    index = Path(out / "report" / "index.html")
    dom = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,1200",
            "--virtual-time-budget=5000", "--dump-dom", index.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=True,
        env=dict(os.environ),
    ).stdout  # fmt: skip
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-ready="1"' in html_tag
    assert 'data-overflow="0"' in html_tag, html_tag
