"""The audit report (hierdata.audit): stats.json against the tables, the page in a real browser,
galleries from the shards, --compare, and fsspec outputs."""

import json
import re
import shutil
import subprocess
import tarfile
import uuid
from collections import Counter
from pathlib import Path

import fsspec
import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from hierdata import isa, outputs, readers, synth, synth_images, trees
from hierdata.audit import tree_stats
from hierdata.audit.__main__ import main as audit_main
from hierdata.audit.report import build_report
from pipelines.build_hier_openimages import main as pipeline_main
from schemas.sample import box_key

SIZES = {"train": 120, "validation": 20, "test": 20}
DEMO_THRESHOLDS = ["--min_pair_frequency", "5", "--min_pair_proportion", "0.1"]
V3_THRESHOLDS = ["--min_pair_frequency", "2", "--min_pair_proportion", "0.05"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> tuple[Path, dict]:
    """A small synthetic run with images and shards, and its report."""
    root = tmp_path_factory.mktemp("audit_input")
    out = tmp_path_factory.mktemp("audit_demo")
    synth.write_synthetic_dataset(str(root), SIZES, seed=1)
    synth_images.write_synthetic_images(str(root), SIZES, seed=1)
    # One image gone and one cut short: the report must list both.
    missing, truncated = (
        sorted((root / split).glob("*.jpg"))[0] for split in ("validation", "test")
    )
    missing.unlink()
    truncated.write_bytes(truncated.read_bytes()[:200])
    assert (
        pipeline_main(
            [
                "--input",
                str(root),
                "--output",
                str(out),
                "--samples_per_shard",
                "50",
                *DEMO_THRESHOLDS,
            ]
        )
        == 0
    )
    return out, build_report(str(out))


@pytest.fixture(scope="module")
def v3_output(shared_data, tmp_path_factory) -> tuple[Path, dict]:
    """The real V3 head files, annotation stages only (no shards), and its report."""
    out = tmp_path_factory.mktemp("audit_v3")
    assert (
        pipeline_main(
            [
                "--input",
                str(shared_data / "openimages-v3-head"),
                "--output",
                str(out),
                "--splits",
                "validation,test",
                "--skip_images",
                *V3_THRESHOLDS,
            ]
        )
        == 0
    )
    return out, build_report(str(out))


def _per_split(table: pa.Table, mask=None) -> dict[str, int]:
    if mask is not None:
        table = table.filter(mask)
    return dict(Counter(table.column("split").to_pylist()))


def _accepted(label_pairs: pa.Table) -> set[tuple[str, str]]:
    rows = label_pairs.filter(label_pairs["accepted"])
    return set(zip(rows["parent_label"].to_pylist(), rows["child_label"].to_pylist(), strict=True))


def _open_in_chromium(index: Path, work: Path) -> tuple[str, str, Path]:
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


def _assert_page_ok(index: Path, work: Path, min_images: int) -> None:
    dom, log, shot = _open_in_chromium(index, work)
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


def test_stats_json_counts_match_the_tables(demo_output):
    out, stats = demo_output
    assert json.loads((out / "report" / "stats.json").read_text())["counts"] == stats["counts"]
    boxes = outputs.read_table(str(out), "boxes")
    pairs = outputs.read_table(str(out), "pairs")
    counts = stats["counts"]
    assert counts["boxes"] == _per_split(boxes)
    assert counts["kept_boxes"] == _per_split(boxes, boxes.column("kept"))
    assert counts["images"] == {
        s: len(set(boxes.filter(pc.equal(boxes["split"], s))["image_id"].to_pylist()))
        for s in SIZES
    }
    assert counts["accepted_pairs"] == _per_split(pairs, pc.equal(pairs["kind"], "box_box"))
    assert counts["candidate_pairs"] == _per_split(outputs.read_table(str(out), "candidates"))
    # Every synthetic image has kept boxes and a sample, but the two broken ones.
    assert counts["samples"] == {"train": 120, "validation": 19, "test": 19}
    assert counts["image_rejects"] == {"train": 0, "validation": 1, "test": 1}
    assert stats["run_json_mismatches"] == []


def test_rejects_by_reason_with_example_rows(demo_output):
    out, stats = demo_output
    rejects = outputs.read_table(str(out), "rejects")
    reasons = Counter(rejects.column("reason").to_pylist())
    images = {reason: n for reason, n in reasons.items() if reason.startswith("image_")}
    rows = stats["rejects"]["rows"]
    assert rows["by_reason"] == {r: n for r, n in reasons.items() if r not in images}
    assert rows["total"] == rejects.num_rows - 2 > 0
    for reason, examples in rows["examples"].items():
        assert 1 <= len(examples) <= 3 and {e["reason"] for e in examples} == {reason}
    broken = stats["rejects"]["images"]
    assert broken["by_reason"] == images and broken["total"] == 2
    assert "image_missing" in images
    files = {e["file"] for examples in broken["examples"].values() for e in examples}
    assert {Path(f).parent.name for f in files} == {"validation", "test"}
    assert all(f.endswith(".jpg") for f in files)


def test_label_pair_totals_and_chosen_threshold_cell(demo_output):
    """DESIGN "Label-pair statistics": the grid's chosen cell is the run itself."""
    out, stats = demo_output
    label_pairs = outputs.read_table(str(out), "label_pairs")
    pairs = outputs.read_table(str(out), "pairs")
    accepted = pc.sum(label_pairs["accepted"]).as_py()
    assert stats["label_pairs"]["accepted"] == accepted > 0
    assert stats["label_pairs"]["candidate"] == label_pairs.num_rows
    grid = stats["thresholds"]
    row = grid["proportion"].index(0.1)
    column = grid["frequency"].index(5)
    assert grid["label_pairs"][row][column] == accepted
    assert grid["training_pairs"][row][column] == pairs.num_rows
    run_tree = trees.label_tree(label_pairs)
    assert grid["tree_edges"][row][column] == len(tree_stats.label_edges(run_tree))
    # Looser thresholds never keep fewer pairs.
    survivors = np.array(grid["label_pairs"])
    assert (np.diff(survivors, axis=0) <= 0).all() and (np.diff(survivors, axis=1) <= 0).all()


def test_threshold_grid_rebuilds_the_label_tree_at_every_point(demo_output):
    """DESIGN "Label tree": each cell's edge count is trees.label_tree on the re-accepted table."""
    out, stats = demo_output
    label_pairs = outputs.read_table(str(out), "label_pairs")
    grid = stats["thresholds"]
    for row, proportion in enumerate(grid["proportion"]):
        for column, frequency in enumerate(grid["frequency"]):
            accepted = pc.and_(
                pc.and_(
                    pc.greater_equal(label_pairs["frequency"], frequency),
                    pc.greater_equal(label_pairs["proportion"], proportion),
                ),
                pc.invert(label_pairs["isa"]),
            )
            table = label_pairs.set_column(
                label_pairs.schema.get_field_index("accepted"), "accepted", accepted
            )
            edges = tree_stats.label_edges(trees.label_tree(table))
            assert grid["tree_edges"][row][column] == len(edges), (frequency, proportion)


def test_hierarchy_classes_are_the_union_of_down_sets(demo_output):
    """DESIGN "Ground truth": the classes of an image's hierarchy trees = ∪ down(L)."""
    out, stats = demo_output
    boxes = outputs.read_table(str(out), "boxes")
    tree = trees.tree_from_node_link(json.loads((out / "trees" / "label_tree.json").read_text()))
    labels: dict[tuple, set] = {}
    for row in boxes.filter(boxes["kept"]).select(["split", "image_id", "label"]).to_pylist():
        labels.setdefault((row["split"], row["image_id"]), set()).add(row["label"])
    union = [
        len(
            set().union(*(trees.down(tree, label) if label in tree else {label} for label in found))
        )
        for found in labels.values()
    ]
    classes = [len(found) for found in labels.values()]
    overall = stats["per_image"]["by_split"]["all"]
    assert overall["hierarchy_classes_mean"] == pytest.approx(np.mean(union))
    assert overall["classes_mean"] == pytest.approx(np.mean(classes))
    assert overall["hierarchy_classes_mean"] > overall["classes_mean"]
    assert overall["boxes_mean"] == pytest.approx(boxes.num_rows / len(labels))
    assert sum(stats["per_image"]["histograms"]["classes"].values()) == len(labels)


def test_multi_parent_labels_show_the_parent_the_tree_kept(demo_output):
    """DESIGN "Label tree": a label with several parents keeps the most granular one."""
    out, stats = demo_output
    tree = trees.tree_from_node_link(json.loads((out / "trees" / "label_tree.json").read_text()))
    multi = stats["tree"]["multi_parent"]
    assert multi  # the synthetic taxonomy has Eye under Face and Person, Hubcap under Wheel, Car
    for entry in multi:
        kept = next(iter(tree.predecessors(entry["child"])))
        assert entry["kept_parent"] == kept
        assert [p["label"] for p in entry["parents"] if p["kept"]] == [kept]
        others = [p["label"] for p in entry["parents"] if not p["kept"]]
        assert all(nx.has_path(tree, other, kept) or other not in tree for other in others)


def test_gallery_crops_are_the_shard_entries_of_the_top_pairs(demo_output):
    out, stats = demo_output
    gallery = stats["gallery"]
    assert gallery["note"] is None and gallery["pairs"]
    label_pairs = outputs.read_table(str(out), "label_pairs")
    top = label_pairs.filter(label_pairs["accepted"]).sort_by([("frequency", "descending")])
    first = gallery["pairs"][0]
    assert (first["parent_label"], first["child_label"]) == (
        top["parent_label"][0].as_py(),
        top["child_label"][0].as_py(),
    )
    assert all(pair["examples"] for pair in gallery["pairs"])
    examples = [e for pair in gallery["pairs"] for e in pair["examples"]]
    checked = 0
    for url in gallery["shards_read"]:
        with tarfile.open(url) as tar:
            names = set(tar.getnames())
            for pair in gallery["pairs"]:
                for e in pair["examples"]:
                    name = f"{e['image_id']}.{box_key(e['parent_box'])}.jpg"
                    if name not in names:
                        continue
                    crop = (out / "report" / e["parent_src"]).read_bytes()
                    assert crop == tar.extractfile(name).read()
                    meta = json.loads(tar.extractfile(f"{e['image_id']}.json").read())
                    by_key = {box["key"]: box["label"] for box in meta["boxes"]}
                    assert by_key[box_key(e["parent_box"])] == pair["parent_label"]
                    assert by_key[box_key(e["child_box"])] == pair["child_label"]
                    checked += 1
    assert checked == len(examples)


def test_official_hierarchy_agreement_of_the_synthetic_truth(demo_output):
    out, stats = demo_output
    agreement = stats["official_hierarchy"]
    hierarchy = stats["run"]["options"]["hierarchy"]
    official = isa.official_part_pairs(readers.read_hierarchy(hierarchy))
    found = {tuple(p) for p in agreement["accepted_official_part"]}
    new = {tuple(p) for p in agreement["accepted_new"]}
    assert found | new == _accepted(outputs.read_table(str(out), "label_pairs"))
    assert found <= official and not new & official
    assert found  # the synthetic data's true part-of pairs are mined


def test_tree_html_lists_every_label_once(demo_output):
    out, _ = demo_output
    tree = trees.tree_from_node_link(json.loads((out / "trees" / "label_tree.json").read_text()))
    markup = tree_stats.tree_html(tree, {})
    assert markup.count('class="tn"') == tree.number_of_nodes()
    inner = sum(1 for label in tree if tree.out_degree(label))
    assert markup.count("<details") == markup.count("</details>") == inner
    for label in tree:
        assert markup.count(f"<code>{label}</code>") == 1


def test_demo_report_in_headless_chromium(demo_output, tmp_path):
    out, stats = demo_output
    gallery_images = 2 * sum(len(p["examples"]) for p in stats["gallery"]["pairs"])
    _assert_page_ok(
        out / "report" / "index.html", tmp_path, min_images=len(stats["plots"]) + gallery_images
    )


def test_v3_report_without_shards(v3_output, tmp_path):
    out, stats = v3_output
    boxes = outputs.read_table(str(out), "boxes")
    assert stats["counts"]["boxes"] == _per_split(boxes)
    assert stats["counts"]["lines"] == {"validation": 1000, "test": 1000}
    assert stats["counts"]["samples"] == {"validation": 0, "test": 0}
    assert stats["gallery"]["pairs"] == [] and "no shards" in stats["gallery"]["note"]
    assert stats["official_hierarchy"] is None  # the V3 head has no hierarchy file
    assert (
        stats["tree"]["labels"]
        == json.loads((out / "run.json").read_text())["label_tree"]["labels"]
    )
    names = {row["name"] for row in stats["class_frequency"]["top"]}
    assert "Person" in names  # display names from the V3 class descriptions, not /m/ ids
    _assert_page_ok(out / "report" / "index.html", tmp_path, min_images=len(stats["plots"]))


def _copy_to_memory(local: Path, url: str) -> None:
    fs = fsspec.filesystem("memory")
    for path in local.rglob("*"):
        relative = path.relative_to(local)
        if path.is_file() and relative.parts[0] != "report":
            fs.pipe_file(f"{url.removeprefix('memory://')}/{relative}", path.read_bytes())


def test_compare_through_fsspec_reports_gained_and_lost(v3_output):
    """`python -m hierdata.audit memory://... --compare LOCAL`: a copy of the V3 run with
    edited acceptance, read and written through fsspec, against the run it came from."""
    out, v3_stats = v3_output
    url = f"memory://audit-{uuid.uuid4().hex}/run"
    _copy_to_memory(out, url)
    fs = fsspec.filesystem("memory")
    label_pairs = outputs.read_table(str(out), "label_pairs")
    accepted = label_pairs["accepted"].to_numpy(zero_copy_only=False).copy()
    flipped = np.concatenate([np.flatnonzero(accepted)[:3], np.flatnonzero(~accepted)[:2]])
    accepted[flipped] = ~accepted[flipped]
    edited = label_pairs.set_column(
        label_pairs.schema.get_field_index("accepted"), "accepted", pa.array(accepted)
    )
    base = url.removeprefix("memory://")
    fs.rm(f"{base}/tables/label_pairs", recursive=True)
    with fs.open(f"{base}/tables/label_pairs/part-00000.parquet", "wb") as handle:
        pq.write_table(edited, handle)
    edited_tree = trees.label_tree(edited)
    fs.pipe_file(
        f"{base}/trees/label_tree.json", json.dumps(trees.tree_node_link(edited_tree)).encode()
    )

    assert audit_main([url, "--compare", str(out)]) == 0  # the command line, end to end
    stats = json.loads(fs.cat_file(f"{base}/report/stats.json"))
    assert fs.exists(f"{base}/report/index.html")
    assert all(fs.exists(f"{base}/report/{path}") for path in stats["plots"].values())
    assert stats["counts"] == v3_stats["counts"]  # the same tables, read through fsspec
    diff = stats["compare"]

    def pairs(rows):
        return {(row["parent"], row["child"]) for row in rows}

    before, after = _accepted(label_pairs), _accepted(edited)
    assert pairs(diff["label_pairs"]["gained"]) == after - before and len(after - before) == 2
    assert pairs(diff["label_pairs"]["lost"]) == before - after and len(before - after) == 3
    run_tree = trees.tree_from_node_link(
        json.loads((out / "trees" / "label_tree.json").read_text())
    )
    new_edges, old_edges = (tree_stats.label_edges(t) for t in (edited_tree, run_tree))
    assert pairs(diff["tree_edges"]["gained"]) == new_edges - old_edges
    assert pairs(diff["tree_edges"]["lost"]) == old_edges - new_edges
    changes = {row["key"]: row for row in diff["counts"]}
    assert changes["label_pairs.accepted"]["change"] == -1


def test_cli_rejects_a_missing_output_in_one_line(tmp_path, capsys):
    """DESIGN "Qualities": a user error is one line and exit code 2, not a traceback."""
    assert audit_main([str(tmp_path / "nothing-here")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no run.json") and "\n" not in err
