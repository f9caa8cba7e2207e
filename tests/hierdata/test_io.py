"""fsspec helpers: whole-file publishing, Parquet tables."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hierdata import io


def test_write_parquet_publishes_one_zstd_file(tmp_path: Path) -> None:
    table = pa.table({"label": ["a", "b"], "kept_boxes": [3, 4]})
    url = str(tmp_path / "deep" / "part-00000.parquet")
    io.write_parquet(url, table)
    assert pq.read_table(url).equals(table)
    assert pq.ParquetFile(url).metadata.row_group(0).column(0).compression == "ZSTD"
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["part-00000.parquet"]
