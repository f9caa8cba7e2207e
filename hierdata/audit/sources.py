"""One run's outputs as the audit reads them: tables as lazy polars frames, run.json, the label
graph, its closure (the ground truth) and the display tree.

Local tables are scanned natively; other fsspec URLs (gs://, memory://) through pyarrow datasets.
"""

import json
from dataclasses import dataclass, field

import networkx as nx
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow.fs import FSSpecHandler, PyFileSystem

from hierdata import ground_truth, input_files, io, outputs, trees
from hierdata.errors import InputError
from schemas import TABLE_SCHEMAS, OutputLayout

_LOCAL = ("file", "local")


def _is_local(url: str) -> bool:
    fs, _ = io.filesystem(url)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return any(protocol in _LOCAL for protocol in protocols)


def scan_table(root: str, table: str) -> pl.LazyFrame:
    """schemas.TABLE_SCHEMAS[table] rows of a run as a LazyFrame; empty when none were written.

    Local files go to pl.scan_parquet. Remote ones are read through the same fsspec filesystem
    (and credentials, or an emulator) as every other reader, via a pyarrow dataset, so polars
    still pushes column projections down and reads only the columns a statistic needs.
    """
    schema = TABLE_SCHEMAS[table]
    files = outputs.table_files(root, table)
    if not files:
        return pl.from_arrow(schema.empty_table()).lazy()
    if _is_local(files[0]):
        return pl.scan_parquet(files, glob=False)  # names are files, not patterns
    fs, _ = io.filesystem(files[0])
    paths = [io.filesystem(url)[1] for url in files]
    dataset = ds.dataset(
        paths, schema=schema, format="parquet", filesystem=PyFileSystem(FSSpecHandler(fs))
    )
    return pl.scan_pyarrow_dataset(dataset)


def _optional_names(url: str | None) -> dict[str, str]:
    """Display names from the run's class descriptions, or none when the file is gone."""
    if not url:
        return {}
    try:
        return input_files.read_class_descriptions(url)
    except (InputError, OSError):
        return {}


def _optional_hierarchy(url: str | None) -> list[tuple[str, str, str]] | None:
    if not url:
        return None
    try:
        return input_files.read_hierarchy(url)
    except (InputError, OSError):
        return None


@dataclass
class Run:
    """A pipeline output opened for the audit: root URL, run.json, label graph, closure (the
    ground truth, schemas.tables.LABEL_CLOSURE), display tree and names."""

    root: str
    record: dict
    graph: nx.DiGraph
    closure: pa.Table
    tree: nx.DiGraph
    names: dict[str, str] = field(default_factory=dict)
    hierarchy: list[tuple[str, str, str]] | None = None

    @property
    def layout(self) -> OutputLayout:
        return OutputLayout(self.root)

    @property
    def options(self) -> dict:
        return self.record.get("options", {})

    def scan(self, table: str) -> pl.LazyFrame:
        return scan_table(self.root, table)

    def name(self, label: str | None) -> str:
        """Display name of a label id (the id itself when unknown; "image" for None)."""
        if label is None:
            return "image"
        return self.names.get(label, label)


def _read_trees(root: str) -> tuple[nx.DiGraph, pa.Table, nx.DiGraph]:
    """The label graph, closure and display tree as the run stored them in trees/; for outputs
    without them, each is rebuilt from label_pairs by the pipeline's own functions."""
    layout = OutputLayout(root)
    rebuilt = None

    def rebuild() -> nx.DiGraph:
        nonlocal rebuilt
        if rebuilt is None:
            rebuilt = trees.label_graph(outputs.read_table(root, "label_pairs"))
        return rebuilt

    def read_json(url: str) -> nx.DiGraph | None:
        if not io.exists(url):
            return None
        return trees.graph_from_node_link(json.loads(io.read_bytes(url)))

    graph = read_json(layout.label_graph_json) or rebuild()
    tree = read_json(layout.label_tree_json) or trees.display_tree(rebuild())
    if io.exists(layout.label_closure_parquet):
        closure = ground_truth.read_closure(layout.label_closure_parquet)
    else:
        closure = ground_truth.label_closure(graph)
    return graph, closure, tree


def open_run(root: str) -> Run:
    """Read run.json, the label tree, class names and (when reachable) the input hierarchy.

    Raises InputError when root holds no run.json (not a pipeline output, or a failed run).
    """
    record = outputs.read_run_record(root)
    graph, closure, tree = _read_trees(root)
    options = record.get("options", {})
    names = {label: attrs.get("name", label) for label, attrs in tree.nodes(data=True)}
    names.update(_optional_names(options.get("class_descriptions")))
    # The pipeline records its own agreement; the hierarchy file is read only for older runs.
    recorded = isinstance(record.get("official_hierarchy"), dict)
    hierarchy = None if recorded else _optional_hierarchy(options.get("hierarchy"))
    return Run(
        root=root,
        record=record,
        graph=graph,
        closure=closure,
        tree=tree,
        names=names,
        hierarchy=hierarchy,
    )
