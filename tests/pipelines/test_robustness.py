"""The issue's reproductions, end to end: strict options, the image probe, bounded and strict
image reads, the image reject bound, one-line errors, clean reruns, progress and the summary."""

import csv
import gzip
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from hierdata import outputs, synth
from pipelines import build_hier_openimages, progress
from pipelines.build_hier_openimages import main
from tests.pipelines.conftest import LOW

SIZES = {"train": 40, "validation": 16, "test": 16}
BBOX = "validation-annotations-bbox.csv"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("robust_input")
    synth.write_synthetic_dataset(str(root), SIZES, seed=3)
    synth.write_synthetic_images(str(root), SIZES, seed=3)
    return root


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.build_hier_openimages", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _one_error_line(done: subprocess.CompletedProcess, start: str) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr[-3000:]
    assert done.stderr[len("error: ") :].startswith(start), done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["--min_pair_frequncy", "5"], "unknown option --min_pair_frequncy (did you mean "),
        (["--skip_images", "stray"], "unexpected argument 'stray'"),
        (["--images", "{input}/{split}/photo.jpg"], "--images '{input}/{split}/photo.jpg' must"),
        (["--images", "{input}/{splt}/{image_id}.jpg"], "--images '{input}/{splt}/{image_id}.jpg'"),
        (["--images", "{input}/nowhere/{image_id}.jpg"], "no image found for split train with"),
        (["--containment", "nan"], "--containment must be a finite number"),
        (["--samples_per_shard", "0"], "--samples_per_shard must be in [1, "),
    ],
    ids=["misspelt", "stray", "no-image-id", "bad-placeholder", "wrong-folder", "nan", "range"],
)
def test_launch_errors_are_one_line_before_any_work(synthetic, tmp_path, args, start) -> None:
    out = tmp_path / "out"
    done = _cli("--input", str(synthetic), "--output", str(out), *args)
    line = _one_error_line(done, start)
    assert done.stdout == ""
    assert not (out / "run.json").exists() and not (out / "tables").exists()
    if "nowhere" in args[-1]:  # names the template and one expanded example path
        assert "{input}/nowhere/{image_id}.jpg" in line and f"{synthetic}/nowhere/" in line


def test_unwritable_output_is_one_line(synthetic, tmp_path) -> None:
    (tmp_path / "a_file").write_text("")
    done = _cli("--input", str(synthetic), "--output", str(tmp_path / "a_file" / "out"))
    assert "is not writable" in _one_error_line(done, "--output ")


@pytest.mark.parametrize("damage", ["gzip", "deep-json"])
def test_unreadable_inputs_are_one_line(synthetic, tmp_path, damage) -> None:
    root = _copy(synthetic, tmp_path / "in")
    if damage == "gzip":
        (root / BBOX).write_bytes(gzip.compress((root / BBOX).read_bytes()))
        start = f"{root / BBOX} is gzip-compressed"
    else:
        depth = 100_000
        text = '{"LabelName":"/m/a","Part":[' * depth + '{"LabelName":"/m/b"}' + "]}" * depth
        (root / "bbox_labels_600_hierarchy.json").write_text(text)
        start = f"{root / 'bbox_labels_600_hierarchy.json'}: hierarchy JSON nested deeper"
    _one_error_line(_cli("--input", str(root), "--output", str(tmp_path / "out")), start)


def test_cr_only_line_endings_are_simply_read(synthetic, tmp_path) -> None:
    root = _copy(synthetic, tmp_path / "in")
    data = (root / BBOX).read_bytes()
    (root / BBOX).write_bytes(data.replace(b"\n", b"\r"))
    out = tmp_path / "out"
    done = _cli(
        "--input", str(root), "--output", str(out), "--skip_images", "--splits", "validation"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    boxes = outputs.read_table(str(out), "boxes")
    rejects = outputs.read_table(str(out), "rejects")
    lines = data.count(b"\n") - 1
    assert boxes.num_rows + rejects.num_rows == lines and boxes.num_rows > lines * 0.9
    assert sorted(boxes["line"].to_pylist() + rejects["line"].to_pylist()) == list(
        range(2, lines + 2)
    )


def _last_image_ids(root: Path, split: str, n: int) -> list[str]:
    """The last n distinct image ids of a split's CSV (the probe looks at the first ones)."""
    with open(root / f"{split}-annotations-bbox.csv", newline="") as handle:
        ids = list(dict.fromkeys(row["ImageID"] for row in csv.DictReader(handle)))
    return ids[-n:]


def _taller(data: bytes) -> bytes:
    sof = data.index(b"\xff\xc0")
    height = struct.unpack(">H", data[sof + 5 : sof + 7])[0]
    return data[: sof + 5] + struct.pack(">H", height + 64) + data[sof + 7 :]


EXPECTED_REASONS = {
    "directory": "image_not_regular_file",
    "fifo": "image_not_regular_file",
    "device": "image_not_regular_file",
    "padded": "image_truncated",
    "taller": "image_truncated",
    "oversize": "image_too_large",
}


@pytest.fixture(scope="module")
def odd_images(synthetic, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The synthetic input with six odd entries among the training images."""
    root = _copy(synthetic, tmp_path_factory.mktemp("odd") / "in")
    chosen = dict(zip(EXPECTED_REASONS, _last_image_ids(root, "train", 6), strict=True))
    for kind, image_id in chosen.items():
        path = root / "train" / f"{image_id}.jpg"
        data = path.read_bytes()
        path.unlink()
        if kind == "directory":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "device":
            os.symlink("/dev/zero", path)
        elif kind == "padded":
            path.write_bytes(data[: len(data) // 3] + b"\xff\xd9")
        elif kind == "taller":
            path.write_bytes(_taller(data))
        else:
            path.write_bytes(data + bytes(200_000))  # past --max_image_mib 0.15
    return root, chosen


def test_odd_image_entries_are_rejects_and_the_run_goes_on(
    odd_images, tmp_path, capsys, monkeypatch
):
    root, chosen = odd_images
    out = tmp_path / "out"
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.2)
    args = ["--input", str(root), "--output", str(out), "--max_image_mib", "0.15", *LOW]
    assert main([*args, "--max_image_reject_fraction", "0.2"]) == 0
    printed = capsys.readouterr().out
    rejects = outputs.read_table(str(out), "rejects")
    images = rejects.filter(rejects["line"].to_numpy() == 0).to_pylist()
    got = {row["raw"].split(":", 1)[0]: row["reason"] for row in images}
    assert got == {chosen[kind]: reason for kind, reason in EXPECTED_REASONS.items()}
    record = outputs.read_run_record(str(out))
    assert record["status"] == "succeeded"
    assert record["images"]["rejected"] == 6 and record["images"]["by_reason"] == {
        "image_not_regular_file": 3,
        "image_too_large": 1,
        "image_truncated": 2,
    }
    # Live progress with stage, counts and elapsed time, then the summary.
    assert "progress 0:00:" in printed and "stage: " in printed and "rows read" in printed
    summary = printed[printed.index("status: succeeded") :]
    assert "images: " in summary and "6 rejected (image_not_regular_file 3" in summary
    assert f"outputs: {out}/run.json" in summary
    # Every marker names the run; a rerun with another sharding leaves no stale shard and no
    # temporary file of a killed write.
    for marker in (out / "shards" / "train").glob("train-*.json"):
        assert json.loads(marker.read_text())["run"] == record["fingerprint"]
    label_tree = json.loads((out / "trees" / "label_tree.json").read_text())
    assert label_tree["graph"]["run_fingerprint"] == record["fingerprint"]
    (out / "shards" / "train" / ".train-000000.tar.0badc0de.tmp").write_bytes(b"partial")
    (out / ".run.json.0badc0de.tmp").write_bytes(b"partial")
    assert main([*args, "--max_image_reject_fraction", "0.2", "--samples_per_shard", "7"]) == 0
    rerun = outputs.read_run_record(str(out))
    names = sorted(p.name for p in (out / "shards" / "train").iterdir())
    index = outputs.read_shard_index(str(out / "shards" / "train"))
    assert names == sorted(
        ["sizes.json"] + [e.name for e in index] + [e.name[:-4] + ".json" for e in index]
    )
    assert len(index) > 1 and not list(out.glob(".*.tmp"))
    assert rerun["fingerprint"] != record["fingerprint"]  # another sharding, another run


def test_image_reject_bound_fails_the_run_in_one_line(odd_images, tmp_path) -> None:
    root, _ = odd_images
    out = tmp_path / "out"
    done = _cli(
        "--input", str(root), "--output", str(out), "--max_image_mib", "0.15", *LOW,
        "--max_image_reject_fraction", "0.01",
    )  # fmt: skip
    line = _one_error_line(done, "6 of ")
    assert "--max_image_reject_fraction 1.00%" in line
    assert "worst reasons: image_not_regular_file (3), image_truncated (2)" in line
    record = outputs.read_run_record(str(out))
    assert record["status"] == "failed" and record["error"] in line


def test_dataflow_job_id_url_and_state_are_logged(capsys) -> None:
    build_hier_openimages.configure_logging()
    runner = logging.getLogger(build_hier_openimages.DATAFLOW_RUNNER_LOGGER)
    client = logging.getLogger(build_hier_openimages.DATAFLOW_CLIENT_LOGGER)
    assert runner.isEnabledFor(logging.INFO) and client.isEnabledFor(logging.INFO)
    assert not logging.getLogger("apache_beam.runners.worker").isEnabledFor(logging.INFO)

    def kept(logger: logging.Logger, message: str) -> bool:
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, (), None)
        return all(f.filter(record) for f in logger.filters)

    assert kept(client, "Created job with id: [%s]")
    assert kept(client, "To access the Dataflow monitoring console, please navigate to %s")
    assert not kept(client, "Create job: %s")  # the whole job request
    assert not kept(client, "Starting GCS upload to %s...")
    assert kept(runner, "Job %s is in state %s")
