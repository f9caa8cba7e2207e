"""WriteShards: counts each split's samples, assigns shards by key hash, writes tars and sizes."""

import io
import tarfile
from pathlib import Path

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that

from hierdata import outputs, shards
from pipelines.write_shards import WriteShards
from schemas import OutputLayout

KEYS = {"train": [f"t{i}" for i in range(5)], "validation": ["v0"]}


def _sample(key: str) -> dict[str, bytes]:
    metadata = {"image_id": key, "boxes": [], "cross": [], "pairs": []}
    return shards.encode_sample(key, {"img": key.encode()}, metadata)


def _check_summary(got: list) -> None:
    (summary,) = got
    counts = {split: (s["shards"], s["samples"]) for split, s in summary.items()}
    assert counts == {"train": (3, 5), "validation": (1, 1)}  # ceil(5 / 2) and ceil(1 / 2)
    assert all(s["bytes"] > 0 for s in summary.values())


def test_write_shards_counts_assigns_and_records_sizes(tmp_path: Path) -> None:
    elements = [((split, key), _sample(key)) for split, keys in KEYS.items() for key in keys]
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        summary = (
            pipeline
            | beam.Create(list(reversed(elements)))
            | "Write shards"
            >> WriteShards(str(tmp_path), samples_per_shard=2, run_fingerprint="f1")
        )
        assert_that(summary, _check_summary)
    layout = OutputLayout(str(tmp_path))
    for split, keys in KEYS.items():
        index = outputs.read_shard_index(layout.shards_dir(split))
        assert sum(entry.samples for entry in index) == len(keys)
        expected = shards.shard_of(keys, len(index)).tolist()
        for entry in index:
            shard = int(entry.name.removesuffix(".tar").rsplit("-", 1)[1])
            assert entry.name == layout.shard_tar_name(split, shard)
            with tarfile.open(fileobj=io.BytesIO(Path(entry.url).read_bytes())) as tar:
                members = {name.split(".", 1)[0] for name in tar.getnames()}
            # Each shard holds exactly the keys that hash to it, its marker written beside it.
            assert members == {k for k, s in zip(keys, expected, strict=True) if s == shard}
            marker = outputs.read_shard_marker(entry.url)
            assert marker["samples"] == entry.samples and marker["run"] == "f1"


def _write(root: Path, samples_per_shard: int) -> None:
    elements = [(("train", key), _sample(key)) for key in KEYS["train"]]
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        _ = pipeline | beam.Create(elements) | WriteShards(str(root), samples_per_shard, "f")


def test_rerun_with_another_sharding_leaves_only_current_shards(tmp_path: Path) -> None:
    """The issue: old tars and their valid markers stayed beside the new ones, and a killed
    write's hidden temporary file stayed forever."""
    _write(tmp_path, 1)
    folder = tmp_path / "shards" / "train"
    assert len(list(folder.glob("train-*.tar"))) > 1  # 5 shard ids; hashing fills 3 of them
    (folder / ".train-000004.tar.0123abcd.tmp").write_bytes(b"partial")
    _write(tmp_path, 5)
    assert sorted(p.name for p in folder.iterdir()) == [
        "sizes.json",
        "train-000000.json",
        "train-000000.tar",
    ]
    (entry,) = outputs.read_shard_index(str(folder))
    assert entry.samples == 5
