"""Writing the Parquet tables: one file per (part, table) element, named by a stable part id."""

import apache_beam as beam
import pyarrow as pa

from hierdata import io
from pipelines.counters import counter
from schemas import TABLE_SCHEMAS, OutputLayout


class _WriteParts(beam.DoFn):
    def __init__(self, root: str, table: str):
        self._layout = OutputLayout(root)
        self._table = table

    def process(self, element: tuple[str, pa.Table]):
        part, table = element
        url = self._layout.table_part(self._table, part)
        io.write_parquet(url, table.cast(TABLE_SCHEMAS[self._table]))
        counter(f"files_{self._table}").inc()


class WriteTable(beam.PTransform):
    """(part, pa.Table) elements -> OUTPUT/tables/{table}/part-{part}.parquet, each at once.

    Part names come from stable ids (CSV chunk, image bucket), so a retried bundle rewrites the
    same file with the same rows, and no temp-and-rename finalize stage is needed.
    """

    def __init__(self, root: str, table: str):
        super().__init__()
        self._root = root
        self._table = table

    def expand(self, parts):
        return parts | beam.ParDo(_WriteParts(self._root, self._table))
