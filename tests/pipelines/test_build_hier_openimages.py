"""End-to-end runs of pipelines.build_hier_openimages on real and synthetic data."""

import csv
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest

from hierdata import outputs, synth
from tests.pipelines.conftest import LOW, run_ok


def _data_lines(path: Path) -> int:
    with path.open() as handle:
        return sum(1 for _ in handle) - 1


def test_v3_every_line_is_a_box_or_a_reject(v3_run, shared_data):
    boxes = outputs.read_table(str(v3_run), "boxes")
    rejects = outputs.read_table(str(v3_run), "rejects")
    for split in ("validation", "test"):
        lines = _data_lines(shared_data / "openimages-v3-head" / f"{split}-annotations-bbox.csv")
        n_boxes = pc.sum(pc.equal(boxes["split"], split)).as_py()
        n_rejects = pc.sum(pc.equal(rejects["split"], split)).as_py() or 0
        assert n_boxes + n_rejects == lines == 1000
        line_numbers = boxes.filter(pc.equal(boxes["split"], split))["line"].to_pylist()
        line_numbers += rejects.filter(pc.equal(rejects["split"], split))["line"].to_pylist()
        assert sorted(line_numbers) == list(range(2, lines + 2))


def _naive_candidates(csv_path: Path) -> set[tuple[str, int, int]]:
    """The DESIGN box rule written out per pair in plain Python, for cross-checking."""
    per_image: dict[str, list[dict]] = {}
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            per_image.setdefault(row["ImageID"], []).append(row)
    found = set()
    for image_id, rows in per_image.items():
        boxes = []
        for box_id, row in enumerate(rows):
            x0, x1, y0, y1 = (float(row[k]) for k in ("XMin", "XMax", "YMin", "YMax"))
            boxes.append((box_id, row["LabelName"], x0, x1, y0, y1, row["IsGroupOf"] == "1"))
        for cid, clabel, cx0, cx1, cy0, cy1, cgroup in boxes:
            carea = (cx1 - cx0) * (cy1 - cy0)
            if carea < 0.01 or cgroup:
                continue
            for pid, plabel, px0, px1, py0, py1, _ in boxes:
                parea = (px1 - px0) * (py1 - py0)
                if pid == cid or plabel == clabel or parea < 0.01 or parea <= carea:
                    continue
                inter = max(0.0, min(cx1, px1) - max(cx0, px0)) * max(
                    0.0, min(cy1, py1) - max(cy0, py0)
                )
                if inter / carea >= 0.8 and inter / (carea + parea - inter) < 0.9:
                    found.add((image_id, pid, cid))
    return found


def test_v3_candidates_match_the_rule_written_out(v3_run, shared_data):
    candidates = outputs.read_table(str(v3_run), "candidates")
    got = candidates.filter(pc.equal(candidates["split"], "validation"))
    got = set(
        zip(
            got["image_id"].to_pylist(),
            got["parent_box"].to_pylist(),
            got["child_box"].to_pylist(),
            strict=True,
        )
    )
    expected = _naive_candidates(
        shared_data / "openimages-v3-head" / "validation-annotations-bbox.csv"
    )
    assert got == expected
    assert len(got) > 50  # the head holds real nested boxes (Person/Clothing/Face...)


def test_v3_label_pairs_are_the_candidates_counted(v3_run):
    candidates = outputs.read_table(str(v3_run), "candidates")
    label_pairs = outputs.read_table(str(v3_run), "label_pairs")
    # No train split processed: the statistics come from validation and test together.
    frequency = Counter(
        zip(
            candidates["parent_label"].to_pylist(),
            candidates["child_label"].to_pylist(),
            strict=True,
        )
    )
    got = dict(
        zip(
            zip(
                label_pairs["parent_label"].to_pylist(),
                label_pairs["child_label"].to_pylist(),
                strict=True,
            ),
            label_pairs["frequency"].to_pylist(),
            strict=True,
        )
    )
    assert got == dict(frequency)
    assert all(0 < p <= 1 for p in label_pairs["proportion"].to_pylist())
    names = dict(
        zip(
            label_pairs["parent_label"].to_pylist(),
            label_pairs["parent_name"].to_pylist(),
            strict=True,
        )
    )
    assert names.get("/m/01g317") == "Person"  # V3 display names come through


def test_v3_pairs_are_image_boxes_plus_accepted_candidates(v3_run):
    boxes = outputs.read_table(str(v3_run), "boxes")
    pairs = outputs.read_table(str(v3_run), "pairs")
    candidates = outputs.read_table(str(v3_run), "candidates")
    label_pairs = outputs.read_table(str(v3_run), "label_pairs")
    accepted = {
        (p, c)
        for p, c, a in zip(
            label_pairs["parent_label"].to_pylist(),
            label_pairs["child_label"].to_pylist(),
            label_pairs["accepted"].to_pylist(),
            strict=True,
        )
        if a
    }
    assert accepted
    kinds = Counter(pairs["kind"].to_pylist())
    assert kinds["image_box"] == pc.sum(boxes["kept"]).as_py()
    expected_box_box = sum(
        (p, c) in accepted
        for p, c in zip(
            candidates["parent_label"].to_pylist(),
            candidates["child_label"].to_pylist(),
            strict=True,
        )
    )
    assert kinds["box_box"] == expected_box_box > 0


def test_v3_run_record(v3_run, shared_data):
    record = outputs.read_run_record(str(v3_run))
    assert record["status"] == "succeeded"
    assert record["counts"]["lines"] == {"validation": 1000, "test": 1000}
    assert record["options"]["stats_splits"] == ["validation", "test"]
    sizes = {Path(i["url"]).name: i["size"] for i in record["inputs"]}
    csv_path = shared_data / "openimages-v3-head" / "validation-annotations-bbox.csv"
    assert sizes["validation-annotations-bbox.csv"] == csv_path.stat().st_size
    assert record["versions"]["apache-beam"] == "2.77.0"


def test_synthetic_default_run_recovers_true_part_of(tmp_path):
    run_ok("--output", str(tmp_path), "--skip_images")
    label_pairs = outputs.read_table(str(tmp_path), "label_pairs")
    accepted = {
        (p, c)
        for p, c, a in zip(
            label_pairs["parent_label"].to_pylist(),
            label_pairs["child_label"].to_pylist(),
            label_pairs["accepted"].to_pylist(),
            strict=True,
        )
        if a
    }
    assert accepted == set(synth.true_part_of_pairs())
    record = outputs.read_run_record(str(tmp_path))
    assert record["options"]["input"].endswith("synthetic_input")
    assert sum(record["counts"]["rejects"]["train"].values()) > 0  # malformed rows recorded


def test_two_local_workers_give_the_same_tables(shared_data, tmp_path):
    root = str(shared_data / "openimages-v3-head")
    args = ["--input", root, "--splits", "validation", "--skip_images", *LOW]
    run_ok(*args, "--output", str(tmp_path / "one"))
    run_ok(*args, "--output", str(tmp_path / "two"), "--local_workers", "2", "--chunk_mib", "0.02")
    for table in ("boxes", "candidates", "pairs", "label_pairs", "rejects"):
        one = outputs.read_table(str(tmp_path / "one"), table)
        two = outputs.read_table(str(tmp_path / "two"), table)
        keys = [(name, "ascending") for name in one.column_names]
        assert one.sort_by(keys).equals(two.sort_by(keys)), table


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.build_hier_openimages", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_missing_input_is_one_line_and_exit_2(tmp_path):
    done = _cli("--input", str(tmp_path / "nope"), "--output", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "nope" in done.stderr


def _write_split(root: Path, header: str, *rows: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "class-descriptions-boxable.csv").write_text("/m/a,Alpha\n/m/b,Beta\n")
    (root / "validation-annotations-bbox.csv").write_text(
        "\n".join([header, *rows]) + "\n" if header else ""
    )


def test_missing_column_is_one_line_and_exit_2(tmp_path):
    _write_split(tmp_path / "in", "ImageID,LabelName,XMin,XMax,YMin", "img1,/m/a,0,1,0")
    done = _cli("--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert done.returncode == 2 and "YMax" in done.stderr
    assert done.stderr.strip().count("\n") == 0


def test_empty_file_is_one_line_and_exit_2(tmp_path):
    _write_split(tmp_path / "in", "")
    done = _cli("--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert done.returncode == 2 and "empty" in done.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_reject_bound_fails_naming_the_worst_reason(tmp_path, workers):
    # One worker: the error reaches the entry point on the exception chain; two worker
    # processes: as the text of the worker's traceback. Either way, one line and exit 2.
    header = "ImageID,LabelName,XMin,XMax,YMin,YMax"
    good = [f"img{i},/m/a,0.1,0.9,0.1,0.9" for i in range(8)]
    _write_split(
        tmp_path / "in", header, *good, "../etc,/m/a,0.1,0.9,0.1,0.9", "img9,/m/zzz,0.1,0.9,0.1,0.9"
    )
    out = tmp_path / "out"
    done = _cli(
        "--input", str(tmp_path / "in"), "--output", str(out), "--skip_images",
        "--local_workers", workers,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]  # nothing before the error line
    assert lines[0].startswith("error: 2 of 10 input rows rejected")
    assert "bad_image_id (1)" in lines[0] and "unknown_label (1)" in lines[0]
    record = outputs.read_run_record(str(out))
    assert record["status"] == "failed" and record["error"] in lines[0]
    rejects = outputs.read_table(str(out), "rejects")
    assert sorted(rejects["reason"].to_pylist()) == ["bad_image_id", "unknown_label"]
    assert sorted(rejects["line"].to_pylist()) == [10, 11]
    # The same input under a looser bound runs, and the rejects are still recorded.
    loose = _cli(
        "--input", str(tmp_path / "in"), "--output", str(tmp_path / "ok"), "--skip_images",
        "--max_reject_fraction", "0.5", "--local_workers", workers,
    )  # fmt: skip
    assert loose.returncode == 0, loose.stderr[-3000:]
    assert outputs.read_run_record(str(tmp_path / "ok"))["status"] == "succeeded"


def test_missing_file_is_one_line_and_exit_2(shared_data, tmp_path):
    done = _cli(
        "--input",
        str(shared_data / "openimages-v4-crlf"),
        "--output",
        str(tmp_path / "out"),
        "--class_descriptions",
        str(tmp_path / "missing.csv"),
    )
    assert done.returncode == 2
    assert "missing.csv" in done.stderr and done.stderr.strip().count("\n") == 0


def test_unknown_split_is_one_line_and_exit_2(shared_data, tmp_path):
    done = _cli(
        "--input",
        str(shared_data / "openimages-v4-crlf"),
        "--output",
        str(tmp_path / "out"),
        "--splits",
        "train",
        "--class_descriptions",
        str(shared_data / "openimages-v4-meta" / "class-descriptions-boxable.csv"),
    )
    assert done.returncode == 2 and "--splits" in done.stderr


def test_crlf_input_with_separate_class_descriptions(shared_data, tmp_path):
    run_ok(
        "--input",
        str(shared_data / "openimages-v4-crlf"),
        "--output",
        str(tmp_path),
        "--class_descriptions",
        str(shared_data / "openimages-v4-meta" / "class-descriptions-boxable.csv"),
        "--skip_images",
        *LOW,
    )
    boxes = outputs.read_table(str(tmp_path), "boxes")
    assert boxes.num_rows == 1955
    assert pc.sum(pc.equal(boxes["is_group_of"], 1)).as_py() == 406
    candidates = outputs.read_table(str(tmp_path), "candidates")
    # Group boxes may be parents but never children.
    group = {
        (i, b)
        for i, b, g in zip(
            boxes["image_id"].to_pylist(),
            boxes["box_id"].to_pylist(),
            boxes["is_group_of"].to_pylist(),
            strict=True,
        )
        if g == 1
    }
    children = set(
        zip(candidates["image_id"].to_pylist(), candidates["child_box"].to_pylist(), strict=True)
    )
    assert not children & group


def test_help_lists_pipeline_and_beam_options():
    done = _cli("--help")
    assert done.returncode == 0
    for option in (
        "--min_pair_proportion",
        "--skip_images",
        "--runner",
        "--project",
        "--setup_file",
        "--direct_num_workers",
    ):
        assert option in done.stdout, option


def _accepted_and_isa(out: Path) -> tuple[set, set]:
    table = outputs.read_table(str(out), "label_pairs")
    rows = list(
        zip(
            table["parent_label"].to_pylist(),
            table["child_label"].to_pylist(),
            table["accepted"].to_pylist(),
            table["isa"].to_pylist(),
            strict=True,
        )
    )
    return {(p, c) for p, c, a, _ in rows if a}, {(p, c) for p, c, _, i in rows if i}


def test_isa_guard_blocks_subcategory_pairs(tmp_path):
    # Without the duplicate rule, Desk boxes (a Subcategory of Table in the synthetic
    # hierarchy) that nearly coincide with Tables would pass both thresholds.
    root = tmp_path / "in"
    synth.write_synthetic_dataset(str(root))
    # Same-object filter off too: Desk/Table nearly coincide, so it would refuse them as well.
    common = ["--input", str(root), "--skip_images", "--duplicate_iou", "2"]
    common += ["--same_object_iou", "2"]
    run_ok(*common, "--output", str(tmp_path / "on"))
    run_ok(*common, "--output", str(tmp_path / "off"), "--isa_guard", "off")
    accepted_on, isa_on = _accepted_and_isa(tmp_path / "on")
    accepted_off, isa_off = _accepted_and_isa(tmp_path / "off")
    desk_table = ("/m/syn_desk", "/m/syn_table")
    assert desk_table in accepted_off and desk_table not in accepted_on
    assert desk_table in isa_on and not isa_off
    assert accepted_on == accepted_off - isa_on
    record = outputs.read_run_record(str(tmp_path / "on"))
    assert list(desk_table) in record["official_hierarchy"]["isa_blocked"]
