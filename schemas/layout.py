"""The output layout: every path under --output that a stage writes or a consumer reads.

Paths are plain strings joined with "/", so they work for local paths and any fsspec URL.
"""

from dataclasses import dataclass

PARQUET_SUFFIX = ".parquet"
TABLES = ("boxes", "rejects", "pairs", "candidates", "label_pairs", "image_trees", "cross_pairs")


@dataclass(frozen=True)
class OutputLayout:
    """Names under one output root (local path or fsspec URL such as gs://bucket/run)."""

    root: str

    def _join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def table_dir(self, table: str) -> str:
        """Folder of one Parquet table: tables/{table}/part-*.parquet."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; expected one of {TABLES}")
        return self._join("tables", table)

    def table_part(self, table: str, part: str) -> str:
        """One file of a table: tables/{table}/part-{part}.parquet (part: a stable batch id)."""
        return f"{self.table_dir(table)}/part-{part}{PARQUET_SUFFIX}"

    def table_glob(self, table: str) -> str:
        return self.table_dir(table) + "/part-*.parquet"

    @property
    def run_json(self) -> str:
        return self._join("run.json")

    @property
    def trees_dir(self) -> str:
        return self._join("trees")

    @property
    def label_tree_json(self) -> str:
        """networkx node-link JSON with display names, depths, frequencies, proportions."""
        return self._join("trees", "label_tree.json")

    @property
    def label_tree_parquet(self) -> str:
        return self._join("trees", "label_tree.parquet")

    def shards_dir(self, split: str) -> str:
        return self._join("shards", split)

    def shard_name(self, split: str, shard: int) -> str:
        """{split}-{NNNNNN}: the tar is NAME.tar, its completion marker NAME.json."""
        return f"{split}-{shard:06d}"

    def shard_tar(self, split: str, shard: int) -> str:
        return self._join("shards", split, self.shard_name(split, shard) + ".tar")

    def shard_marker(self, split: str, shard: int) -> str:
        return self._join("shards", split, self.shard_name(split, shard) + ".json")

    def shard_sizes(self, split: str) -> str:
        """sizes.json: {shard tar file name: sample count} for one split."""
        return self._join("shards", split, "sizes.json")

    @property
    def report_dir(self) -> str:
        return self._join("report")

    @property
    def synthetic_input(self) -> str:
        """Where a run with no --input writes the synthetic demo dataset."""
        return self._join("synthetic_input")
