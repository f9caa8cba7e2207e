"""The audit report end to end (hierdata.audit): the official hierarchy, the page in a real
browser, a run without shards, --compare through fsspec, and the command line."""

import json
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hierdata import input_files, isa, outputs, trees
from hierdata.audit import tree_stats
from hierdata.audit.__main__ import main as audit_main
from tests.hierdata.audit.helpers import accepted_pairs, assert_page_ok, per_split


def test_official_hierarchy_agreement_of_the_synthetic_truth(demo_output):
    out, stats = demo_output
    agreement = stats["official_hierarchy"]
    hierarchy = stats["run"]["options"]["hierarchy"]
    official = isa.official_part_pairs(input_files.read_hierarchy(hierarchy))
    found = {tuple(p) for p in agreement["accepted_official_part"]}
    new = {tuple(p) for p in agreement["accepted_new"]}
    assert found | new == accepted_pairs(outputs.read_table(str(out), "label_pairs"))
    assert found <= official and not new & official
    assert found  # the synthetic data's true part-of pairs are mined


def test_demo_report_in_headless_chromium(demo_output, tmp_path):
    out, stats = demo_output
    gallery_images = 2 * sum(len(p["examples"]) for p in stats["gallery"]["pairs"])
    assert_page_ok(
        out / "report" / "index.html", tmp_path, min_images=len(stats["plots"]) + gallery_images
    )


def test_v3_report_without_shards(v3_output, tmp_path):
    out, stats = v3_output
    boxes = outputs.read_table(str(out), "boxes")
    assert stats["counts"]["boxes"] == per_split(boxes)
    assert stats["counts"]["lines"] == {"validation": 1000, "test": 1000}
    assert stats["counts"]["samples"] == {"validation": 0, "test": 0}
    assert stats["gallery"]["pairs"] == [] and "no shards" in stats["gallery"]["note"]
    assert stats["official_hierarchy"] is None  # the V3 head has no hierarchy file
    # ... so the headline says plainly that the is-a guard was off, and why.
    assert stats["run"]["isa_guard"]["state"] == "off"
    page = (out / "report" / "index.html").read_text()
    assert "The is-a guard was off" in page and "no hierarchy file" in page
    assert (
        stats["tree"]["labels"]
        == json.loads((out / "run.json").read_text())["label_tree"]["labels"]
    )
    names = {row["name"] for row in stats["class_frequency"]["top"]}
    assert "Person" in names  # display names from the V3 class descriptions, not /m/ ids
    assert_page_ok(out / "report" / "index.html", tmp_path, min_images=len(stats["plots"]))


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
        f"{base}/trees/label_tree.json", json.dumps(trees.node_link_data(edited_tree)).encode()
    )

    assert audit_main([url, "--compare", str(out)]) == 0  # the command line, end to end
    stats = json.loads(fs.cat_file(f"{base}/report/stats.json"))
    assert fs.exists(f"{base}/report/index.html")
    assert all(fs.exists(f"{base}/report/{path}") for path in stats["plots"].values())
    assert stats["counts"] == v3_stats["counts"]  # the same tables, read through fsspec
    diff = stats["compare"]

    def pairs(rows):
        return {(row["parent"], row["child"]) for row in rows}

    before, after = accepted_pairs(label_pairs), accepted_pairs(edited)
    assert pairs(diff["label_pairs"]["gained"]) == after - before and len(after - before) == 2
    assert pairs(diff["label_pairs"]["lost"]) == before - after and len(before - after) == 3
    run_tree = trees.graph_from_node_link(
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


def test_headline_shows_missing_and_corrupt_images(demo_output):
    """The issue: a run's report said "succeeded" whatever happened to its images."""
    out, stats = demo_output
    images = stats["run"]["images"]
    assert images["by_reason"] == {"image_missing": 1, "image_truncated": 1}
    assert images["written"] == images["planned"] - 2
    page = (out / "report" / "index.html").read_text()
    headline = page[: page.index("Inputs and fingerprints")]
    assert "images missing" in headline and "images corrupt" in headline
    assert "samples written / planned" in headline
