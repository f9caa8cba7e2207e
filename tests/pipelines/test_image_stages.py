"""End-to-end shard stage: trees, cross-image pairs and WebDataset shards from real JPEGs."""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from hierdata import outputs, synth
from pipelines.build_hier_openimages import main

REPO = Path(__file__).resolve().parents[2]
SIZES = {"train": 240, "validation": 60, "test": 60}
LOW = ["--min_pair_frequency", "10", "--min_pair_proportion", "0.1"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth_input")
    synth.write_synthetic_dataset(str(root), SIZES, seed=3)
    synth.write_synthetic_images(str(root), SIZES, seed=3)
    return root


def _run(root: Path, out: Path, *extra: str) -> None:
    assert (
        main(
            ["--input", str(root), "--output", str(out), "--samples_per_shard", "50", *LOW, *extra]
        )
        == 0
    )


def _shard_digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.glob("shards/*/*"))
        if p.suffix in (".tar", ".json")
    }


@pytest.fixture(scope="module")
def clean_run(synth_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    _run(synth_root, out)
    return out


def test_webdataset_reads_every_shard_and_counts_match_sizes(clean_run, synth_root):
    for split, n_images in SIZES.items():
        sizes = json.loads((clean_run / "shards" / split / "sizes.json").read_text())
        assert sum(sizes.values()) == n_images  # every synthetic image has kept boxes
        for name, expected in sizes.items():
            url = str(clean_run / "shards" / split / name)
            got = list(wds.WebDataset(url, shardshuffle=False))
            assert len(got) == expected
            keys = [s["__key__"] for s in got]
            assert keys == sorted(keys)  # samples sorted inside a shard
            for sample in got[:5]:
                meta = json.loads(sample["json"])
                crops = {k[:-4] for k in sample if k.endswith(".jpg")}
                assert crops == {"img"} | {b["key"] for b in meta["boxes"]} | {
                    c["key"] for c in meta["cross"]
                }
                source = synth_root / split / f"{sample['__key__']}.jpg"
                assert (meta["width"], meta["height"]) == Image.open(source).size
                children = {p["child"] for p in meta["pairs"]}
                assert {b["key"] for b in meta["boxes"]} <= children  # image ⊃ every box


def test_sample_metadata_matches_tables(clean_run):
    pairs = outputs.read_table(str(clean_run), "pairs")
    cross = outputs.read_table(str(clean_run), "cross_pairs")
    trees = outputs.read_table(str(clean_run), "image_trees")
    url = sorted((clean_run / "shards" / "train").glob("*.tar"))[0]
    sample = next(iter(wds.WebDataset(str(url), shardshuffle=False)))
    meta = json.loads(sample["json"])
    image_id = meta["image_id"]
    kinds = {"image_box": 0, "box_box": 0}
    for kind, image in zip(pairs["kind"].to_pylist(), pairs["image_id"].to_pylist(), strict=True):
        if image == image_id:
            kinds[kind] += 1
    got = {k: sum(p["kind"] == k for p in meta["pairs"]) for k in kinds}
    assert got == kinds
    n_cross = sum(i == image_id for i in cross["image_id"].to_pylist())
    assert len(meta["cross"]) == n_cross == sum(p["kind"] == "cross_image" for p in meta["pairs"])
    for entry in meta["cross"]:
        assert entry["source_image_id"] != image_id
    parents = {
        b: p
        for i, b, p in zip(
            trees["image_id"].to_pylist(),
            trees["box_id"].to_pylist(),
            trees["parent_box"].to_pylist(),
            strict=True,
        )
        if i == image_id
    }
    for box in meta["boxes"]:
        parent = parents[box["box_id"]]
        assert box["tree_parent"] == ("img" if parent < 0 else f"b{parent:03d}")


def test_trees_written(clean_run):
    tree = json.loads((clean_run / "trees" / "label_tree.json").read_text())
    names = {node["id"]: node.get("name") for node in tree["nodes"]}
    assert names["scene"] == "scene" and names["/m/syn_wheel"] == "Wheel"
    record = outputs.read_run_record(str(clean_run))
    assert record["label_tree"]["max_depth"] >= 3  # scene > Car > Wheel > Hubcap
    assert record["official_hierarchy"]["counts"]["accepted_official_part"] > 0


def test_rerun_gives_byte_identical_shards(synth_root, clean_run, tmp_path):
    _run(synth_root, tmp_path)
    assert _shard_digests(tmp_path) == _shard_digests(clean_run)


def test_two_workers_give_identical_shards(synth_root, clean_run, tmp_path):
    _run(
        synth_root, tmp_path, "--local_workers", "2", "--chunk_mib", "0.05", "--bucket_mib", "0.02"
    )
    assert _shard_digests(tmp_path) == _shard_digests(clean_run)
    one = outputs.read_table(str(clean_run), "cross_pairs")
    two = outputs.read_table(str(tmp_path), "cross_pairs")
    keys = [(name, "ascending") for name in one.column_names]
    assert one.sort_by(keys).equals(two.sort_by(keys))


def _complete_tar(path: Path) -> bool:
    try:
        with tarfile.open(path) as tar:
            tar.getmembers()
        return True
    except (tarfile.TarError, OSError, EOFError):
        return False


def test_sigkill_during_shard_writing_then_rerun(synth_root, clean_run, tmp_path):
    args = [
        sys.executable,
        "-m",
        "pipelines.build_hier_openimages",
        "--input",
        str(synth_root),
        "--output",
        str(tmp_path),
        "--samples_per_shard",
        "50",
        *LOW,
    ]
    process = subprocess.Popen(
        args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    seen_tars: set[str] = set()
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            tars = list(tmp_path.glob("shards/*/*.tar"))
            for tar in tars:
                # At any point, a file under a final name is a whole tar.
                assert _complete_tar(tar), f"partial tar under final name: {tar}"
                seen_tars.add(tar.name)
            if tars:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert seen_tars, "the run ended before any shard was written"
    assert process.returncode == -signal.SIGKILL
    for tar in tmp_path.glob("shards/*/*.tar"):
        assert _complete_tar(tar)
    _run(synth_root, tmp_path)
    assert _shard_digests(tmp_path) == _shard_digests(clean_run)


def test_corrupt_and_missing_images_become_rejects(synth_root, tmp_path):
    root = tmp_path / "input"
    shutil.copytree(synth_root, root)
    images = sorted((root / "validation").glob("*.jpg"))
    images[0].unlink()
    images[1].write_bytes(b"not a jpeg at all")
    data = images[2].read_bytes()
    images[2].write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    _run(root, out)
    rejects = outputs.read_table(str(out), "rejects")
    image_rows = {
        Path(f).stem: r
        for f, r in zip(rejects["file"].to_pylist(), rejects["reason"].to_pylist(), strict=True)
        if f.endswith(".jpg")
    }
    assert image_rows == {
        images[0].stem: "image_missing",
        images[1].stem: "image_corrupt",
        images[2].stem: "image_truncated",
    }
    sizes = json.loads((out / "shards" / "validation" / "sizes.json").read_text())
    assert sum(sizes.values()) == SIZES["validation"] - 3
    record = outputs.read_run_record(str(out))
    assert record["status"] == "succeeded"
    assert sum(record["image_rejects"]["validation"].values()) == 3


def test_real_photos_crop_like_the_reference(shared_data, tmp_path):
    photos = shared_data / "openimages-photos"
    root = tmp_path / "input"
    root.mkdir()
    shutil.copy(photos / "boxes.csv", root / "validation-annotations-bbox.csv")
    shutil.copy(shared_data / "openimages-v4-meta" / "class-descriptions-boxable.csv", root)
    out = tmp_path / "out"
    assert (
        main(
            [
                "--input",
                str(root),
                "--output",
                str(out),
                "--images",
                str(photos / "images" / "{image_id}.jpg"),
                "--crop_size",
                "4096",
                "--jpeg_quality",
                "95",
                "--min_box_area",
                "0",
                "--duplicate_iou",
                "2",
            ]
        )
        == 0
    )
    samples = {
        s["__key__"]: s
        for url in sorted((out / "shards" / "validation").glob("*.tar"))
        for s in wds.WebDataset(str(url), shardshuffle=False)
    }
    assert len(samples) == 14
    rectangles = (photos / "reference-crops" / "crop-rectangles.csv").read_text().splitlines()
    assert len(rectangles) > 1
    for image_id in ("07988525d97edf50", "0c7b2e492da6ba02"):
        meta = json.loads(samples[image_id]["json"])
        references = sorted((photos / "reference-crops" / image_id).glob("*.png"))
        assert len(meta["boxes"]) == len(references)
        for box, reference in zip(meta["boxes"], references, strict=True):
            ours = np.asarray(
                Image.open(io.BytesIO(samples[image_id][f"{box['key']}.jpg"])).convert("RGB"),
                dtype=np.int16,
            )
            theirs = np.asarray(Image.open(reference).convert("RGB"), dtype=np.int16)
            assert ours.shape == theirs.shape  # the crop rule's pixel rectangle, unscaled
            assert np.abs(ours - theirs).mean() < 4  # JPEG at quality 95 of the same pixels
