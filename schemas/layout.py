"""The output layout: every path under --output that a stage writes or a consumer reads.

Paths are plain strings joined with "/", so they work for local paths and any fsspec URL.
"""

from dataclasses import dataclass

PARQUET_SUFFIX = ".parquet"
SHARD_SUFFIX = ".tar"
MARKER_SUFFIX = ".json"  # a shard's completion marker: the tar's name with this suffix
SIZES_JSON = "sizes.json"
RUN_JSON = "run.json"
LABEL_TREE_JSON = "label_tree.json"
LABEL_TREE_PARQUET = "label_tree.parquet"
LABEL_GRAPH_JSON = "label_graph.json"
LABEL_CLOSURE_PARQUET = "label_closure.parquet"
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
        return self._join(RUN_JSON)

    @property
    def trees_dir(self) -> str:
        return self._join("trees")

    @property
    def label_tree_json(self) -> str:
        """networkx node-link JSON with display names, depths, frequencies, proportions."""
        return label_tree_json(self.trees_dir)

    @property
    def label_tree_parquet(self) -> str:
        return self._join("trees", LABEL_TREE_PARQUET)

    @property
    def label_graph_json(self) -> str:
        """networkx node-link JSON of the accepted-pair label graph with each edge's statistics."""
        return self._join("trees", LABEL_GRAPH_JSON)

    @property
    def label_closure_parquet(self) -> str:
        """The evaluation ground truth: schemas.tables.LABEL_CLOSURE."""
        return label_closure_parquet(self.trees_dir)

    def shards_dir(self, split: str) -> str:
        return self._join("shards", split)

    def shard_name(self, split: str, shard: int) -> str:
        """{split}-{NNNNNN}: the tar is NAME.tar, its completion marker NAME.json."""
        return f"{split}-{shard:06d}"

    def shard_tar_name(self, split: str, shard: int) -> str:
        """The tar's file name inside its split folder, as sizes.json lists it."""
        return self.shard_name(split, shard) + SHARD_SUFFIX

    def shard_tar(self, split: str, shard: int) -> str:
        return self._join("shards", split, self.shard_tar_name(split, shard))

    def shard_marker(self, split: str, shard: int) -> str:
        return shard_marker_url(self.shard_tar(split, shard))

    def shard_sizes(self, split: str) -> str:
        """sizes.json: {shard tar file name: sample count} for one split."""
        return sizes_json_url(self.shards_dir(split))

    @property
    def report_dir(self) -> str:
        return self._join("report")

    @property
    def synthetic_input(self) -> str:
        """Where a run with no --input writes the synthetic demo dataset."""
        return self._join("synthetic_input")


def _join_url(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def sizes_json_url(shard_folder: str) -> str:
    """The sizes.json of a folder of shards (local path or fsspec URL)."""
    return _join_url(shard_folder, SIZES_JSON)


def shard_marker_url(tar_url: str) -> str:
    """The completion marker of a shard tar: NAME.tar -> NAME.json, beside it."""
    if not tar_url.endswith(SHARD_SUFFIX):
        raise ValueError(f"not a shard tar (no {SHARD_SUFFIX} suffix): {tar_url}")
    return tar_url[: -len(SHARD_SUFFIX)] + MARKER_SUFFIX


def label_tree_json(trees: str) -> str:
    """The label tree JSON of a trees folder; a path that already names a .json file is kept."""
    return trees if trees.endswith(".json") else _join_url(trees, LABEL_TREE_JSON)


def label_closure_parquet(trees: str) -> str:
    """The label closure of a trees folder, or the one beside a given label_tree.json."""
    if not trees.endswith(".json"):
        return _join_url(trees, LABEL_CLOSURE_PARQUET)
    folder = trees.rsplit("/", 1)[0] if "/" in trees else "."
    return _join_url(folder, LABEL_CLOSURE_PARQUET)
