"""Which run an output comes from: run fingerprints in trees files and shard markers."""

import json
from pathlib import Path

import pyarrow as pa
import pytest

from hierdata import shards
from hierdata.errors import InputError
from hierdata.outputs import check_same_run, stamp_run, trees_run
from schemas import OutputLayout


def test_stamp_run_marks_node_link_json_and_tables() -> None:
    data = {"directed": True, "graph": {"root": "scene"}, "nodes": [], "edges": []}
    stamped = stamp_run(data, "abc")
    assert stamped["graph"] == {"root": "scene", "run_fingerprint": "abc"} and data["graph"] == {
        "root": "scene"
    }
    assert trees_run(stamped) == "abc" and trees_run(data) is None
    table = stamp_run(pa.table({"label": ["a"]}), "abc")
    assert table.schema.metadata[b"run_fingerprint"] == b"abc"
    assert stamp_run(data, None) is data


def _shard(root: Path, shard: int, run: str | None) -> str:
    layout = OutputLayout(str(root))
    metadata = {"image_id": f"k{shard}", "boxes": [], "cross": [], "pairs": []}
    sample = shards.encode_sample(f"k{shard}", {"img": b"x"}, metadata)
    shards.write_shard(layout, "validation", shard, [(f"k{shard}", sample)], run)
    return layout.shard_tar("validation", shard)


def test_trees_and_shards_of_one_run_pass(tmp_path: Path) -> None:
    urls = [_shard(tmp_path, 0, "run1"), _shard(tmp_path, 1, "run1")]
    check_same_run("run1", urls)
    check_same_run(None, urls)  # trees of a run that recorded no fingerprint


def test_trees_of_another_run_are_refused(tmp_path: Path) -> None:
    urls = [_shard(tmp_path, 0, "run1")]
    with pytest.raises(InputError, match="trees are from pipeline run run2 but the shards"):
        check_same_run("run2", urls)


def test_shards_of_two_runs_are_refused(tmp_path: Path) -> None:
    urls = [_shard(tmp_path, 0, "run1"), _shard(tmp_path, 1, "run2")]
    with pytest.raises(InputError, match="different pipeline runs"):
        check_same_run("run1", urls)


def test_markers_without_a_run_are_not_compared(tmp_path: Path) -> None:
    url = _shard(tmp_path, 0, None)
    assert "run" not in json.loads(Path(url[:-4] + ".json").read_text())
    check_same_run("run9", [url])


def test_a_table_from_an_older_pipeline_is_one_clear_error(tmp_path):
    """A table without a column of today's schema names the columns and says to rerun."""
    import pyarrow.parquet as pq

    from hierdata.outputs import read_table
    from schemas import LABEL_PAIRS

    old = LABEL_PAIRS.empty_table().drop_columns(["iou_median", "same_object"])
    url = OutputLayout(str(tmp_path)).table_part("label_pairs", "00000")
    Path(url).parent.mkdir(parents=True)
    pq.write_table(old, url)
    with pytest.raises(InputError, match="no column iou_median, same_object: written by an older"):
        read_table(str(tmp_path), "label_pairs")
    pq.write_table(LABEL_PAIRS.empty_table(), url)
    assert read_table(str(tmp_path), "label_pairs").schema == LABEL_PAIRS
