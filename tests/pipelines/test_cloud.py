"""The cloud paths offline: a DataflowRunner dry run, and gs:// through gcp-storage-emulator."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import webdataset as wds
from apache_beam.options.pipeline_options import StandardOptions

from pipelines.build_hier_openimages import run

REPO = Path(__file__).resolve().parents[2]


def test_dataflow_dry_run_builds_the_job(shared_data):
    result = run(
        [
            "--runner=DataflowRunner",
            "--dry_run=True",
            "--no_auth",
            "--project=hier-project",
            "--region=us-central1",
            "--temp_location=gs://hier-bucket/tmp",
            "--sdk_location=container",
            "--input",
            str(shared_data / "openimages-v3-head"),
            "--splits",
            "validation",
            "--output",
            "gs://hier-bucket/out",
        ]
    )
    # The dry run translates the whole graph into a Dataflow job without submitting it.
    assert result.job.options.view_as(StandardOptions).runner == "DataflowRunner"
    names = {t.unique_name for t in result.job.proto_pipeline.components.transforms.values()}
    for step in (
        "Read annotations/Read and validate",
        "Read annotations/Write rejects",
        "Mine images/Key by image bucket",
        "Mine images/Group images",
        "Mine images/Mine",
        "Mine images/Write boxes",
        "Mine images/Write candidates",
        "Label-pair statistics/Sum label pairs",
        "Label-pair statistics/Label pairs",
        "Label-pair statistics/Trees",
        "Label-pair statistics/Write label_pairs",
        "Finish buckets/Cross-image reservoirs/Merge reservoirs",
        "Finish buckets/Finish",
        "Finish buckets/Write pairs",
        "Finish buckets/Write image_trees",
        "Finish buckets/Write cross_pairs",
        "Image stages/Decode and crop",
        "Image stages/Assemble samples",
        "Image stages/Write shards/Count samples",
        "Image stages/Write shards/Write shard tars",
        "Image stages/Write shards/Write sizes.json",
        "Run record/Write run.json",
    ):
        assert step in names, step


def test_gs_input_and_output_through_the_emulator(shared_data, gcs_emulator, tmp_path):
    env = dict(os.environ, STORAGE_EMULATOR_HOST=gcs_emulator)
    upload = (
        "import fsspec, sys\n"
        "fs = fsspec.filesystem('gs')\n"
        "fs.mkdir('hier-test')\n"
        "src = sys.argv[1]\n"
        "for name in ('validation-annotations-bbox.csv', 'class-descriptions.csv'):\n"
        "    fs.pipe_file('hier-test/in/' + name, open(src + '/' + name, 'rb').read())\n"
    )
    subprocess.run(
        [sys.executable, "-c", upload, str(shared_data / "openimages-v3-head")],
        check=True,
        env=env,
        timeout=120,
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.build_hier_openimages",
            "--input",
            "gs://hier-test/in",
            "--output",
            "gs://hier-test/out",
            "--skip_images",
            "--min_pair_frequency",
            "2",
            "--min_pair_proportion",
            "0.05",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    check = (
        "import json, sys\n"
        "from hierdata import outputs\n"
        "root = 'gs://hier-test/out'\n"
        "print(json.dumps({t: outputs.read_table(root, t).num_rows for t in "
        "('boxes', 'rejects', 'candidates', 'pairs', 'label_pairs')}"
        " | {'status': outputs.read_run_record(root)['status']}))\n"
    )
    got = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
        check=True,
    )
    counts = json.loads(got.stdout.strip().splitlines()[-1])
    assert counts["status"] == "succeeded"
    assert counts["boxes"] + counts["rejects"] == 1000
    assert counts["candidates"] > 0 and counts["label_pairs"] > 0
    assert counts["pairs"] >= counts["boxes"] // 2


def test_gs_shards_through_the_emulator(gcs_emulator, tmp_path):
    env = dict(os.environ, STORAGE_EMULATOR_HOST=gcs_emulator)
    # The synthetic dataset, photos included, written straight to gs:// by its generators.
    make = (
        "import fsspec\n"
        "from hierdata import synth\n"
        "fsspec.filesystem('gs').mkdir('hier-shards')\n"
        "sizes = {'train': 60, 'validation': 12}\n"
        "synth.write_synthetic_dataset('gs://hier-shards/in', sizes, seed=5)\n"
        "synth.write_synthetic_images('gs://hier-shards/in', sizes, seed=5)\n"
    )
    subprocess.run([sys.executable, "-c", make], check=True, env=env, timeout=300, cwd=REPO)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.build_hier_openimages",
            "--input",
            "gs://hier-shards/in",
            "--output",
            "gs://hier-shards/out",
            "--min_pair_frequency",
            "3",
            "--samples_per_shard",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fetch = (
        "import fsspec, sys\n"
        "fs = fsspec.filesystem('gs')\n"
        "fs.get('hier-shards/out/shards', sys.argv[1], recursive=True)\n"
    )
    subprocess.run(
        [sys.executable, "-c", fetch, str(tmp_path / "shards")],
        check=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )
    for split, n_images in (("train", 60), ("validation", 12)):
        folder = tmp_path / "shards" / split
        sizes = json.loads((folder / "sizes.json").read_text())
        assert sum(sizes.values()) == n_images
        for name, count in sizes.items():
            marker = json.loads((folder / name.replace(".tar", ".json")).read_text())
            data = (folder / name).read_bytes()
            assert marker["sha256"] == hashlib.sha256(data).hexdigest()
            assert len(list(wds.WebDataset(str(folder / name), shardshuffle=False))) == count
