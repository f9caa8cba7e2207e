"""Damaged shards (DESIGN "Qualities"): a corrupt sample is skipped and counted, past a bound the
stream stops with one error line; a truncated or non-tar shard is one error line."""

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hierdata.errors import InputError, one_line
from training.data import CorruptSample, SkipCounter, parse_sample, read_samples


def _members(tar_path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(tar_path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def _write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _shard_folder(tiny_run, tmp_path: Path, damage: dict[str, str]) -> tuple[Path, list[str]]:
    """A copy of the first train shard with the samples named in `damage` damaged:
    "json" (not JSON), "schema" (JSON without the pairs), "jpeg" (a crop cut short),
    "missing" (a crop entry removed)."""
    members = _members(tiny_run.train_dir / "train-000000.tar")
    keys = list(dict.fromkeys(name.split(".", 1)[0] for name, _ in members))
    chosen = dict(zip(keys, damage.values(), strict=False))
    out = []
    for name, data in members:
        key, entry = name.split(".", 1)
        kind = chosen.get(key)
        if kind == "json" and entry == "json":
            data = b'{"image_id": "x", "boxes": [tru'
        elif kind == "schema" and entry == "json":
            data = json.dumps({"image_id": key}).encode()
        elif kind == "jpeg" and entry == "img.jpg":
            data = data[: len(data) // 2]
        elif kind == "missing" and entry == "img.jpg":
            continue
        out.append((name, data))
    folder = tmp_path / "shards"
    folder.mkdir()
    _write_tar(folder / "s.tar", out)
    (folder / "sizes.json").write_text(json.dumps({"s.tar": len(keys)}))
    return folder, keys


def test_corrupt_samples_are_skipped_and_counted(tiny_run, tmp_path, caplog) -> None:
    damage = {"a": "json", "b": "schema", "c": "jpeg", "d": "missing"}
    folder, keys = _shard_folder(tiny_run, tmp_path, damage)
    skips = SkipCounter(max_fraction=0.5)
    read = [s.image_id for s in read_samples([str(folder / "s.tar")], skips)]
    assert read == keys[4:]
    assert skips.seen == len(keys) and sum(skips.skipped.values()) == 4
    assert skips.skipped == {
        "malformed sample JSON": 2,
        "img.jpg": 1,
        "no img.jpg entry": 1,
    }
    assert "skipped corrupt sample" in caplog.text


def test_past_the_bound_the_stream_stops_with_one_line(tiny_run, tmp_path) -> None:
    folder, _ = _shard_folder(tiny_run, tmp_path, {str(i): "json" for i in range(12)})
    with pytest.raises(InputError, match=r"11 of 11 shard samples read are corrupt") as caught:
        list(read_samples([str(folder / "s.tar")]))
    assert "\n" not in str(caught.value)


def test_parse_sample_names_the_problem() -> None:
    with pytest.raises(CorruptSample, match="no json entry"):
        parse_sample({"__key__": "k", "img.jpg": b"x"})
    metadata = {"image_id": "k", "labels": [], "boxes": [], "cross": [],
                "pairs": [{"parent": "img", "child": "b000", "kind": "image_box"}]}  # fmt: skip
    with pytest.raises(CorruptSample, match="a pair names crop"):
        parse_sample({"json": json.dumps(metadata).encode()})
    metadata["pairs"] = []
    assert parse_sample({"json": json.dumps(metadata).encode()}).pairs == []


@pytest.mark.parametrize("kind", ["truncated", "not-a-tar"])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_damaged_shard_is_one_error_line_in_training(tiny_run, tmp_path, kind, workers) -> None:
    """The issue: training crashed with a traceback on a truncated or non-tar shard."""
    data = (tiny_run.train_dir / "train-000000.tar").read_bytes()
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "s.tar").write_bytes(data[: len(data) // 2] if kind == "truncated" else b"x" * 4096)
    (folder / "sizes.json").write_text('{"s.tar": 40}')
    done = subprocess.run(
        [sys.executable, "-m", "training.train", "--shards", str(folder / "s.tar"),
         "--output", str(tmp_path / "train"), "--max_steps", "50", "--batch_pairs", "8",
         "--num_workers", workers, "--device", "cpu"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert errors[0].startswith(f"error: {folder / 's.tar'} is not a readable tar shard")
    # the status line and the progress bar go to stdout: stderr is the error line alone
    assert done.stderr.strip().splitlines() == errors, done.stderr[-3000:]


@pytest.mark.parametrize("option", [("--lr", "nan"), ("--init_temperature", "0"),
                                    ("--head_lr", "inf"), ("--beta1", "nan")])  # fmt: skip
def test_invalid_hyper_parameters_are_refused_at_launch(tiny_run, tmp_path, option) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "training.train", "--shards", tiny_run.shards,
         "--output", str(tmp_path / "train"), "--max_steps", "1", *option],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-3000:]
    assert done.stderr.startswith("error: ") and option[0].lstrip("-") in done.stderr


def test_one_line_keeps_a_relayed_errors_own_message() -> None:
    relayed = InputError(
        "Caught InputError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        'call last):\n  File "x.py", line 1\nhierdata.errors.InputError: shard s.tar is bad\n'
    )
    assert one_line(relayed) == "shard s.tar is bad"
    assert one_line(InputError("plain")) == "plain"
