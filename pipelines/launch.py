"""What the launcher does before the graph is built: find the inputs (or write the synthetic
demo set), resolve the options, read the small files and cut the work into chunks and buckets.

It reads only headers, class descriptions and the hierarchy; workers read the CSVs in byte
ranges (see README "Scale").
"""

import logging

from hierdata import buckets, io, isa, readers, synth
from hierdata.errors import InputError
from pipelines.config import RunConfig, resolve
from pipelines.options import HierOpenImagesOptions, check_values
from schemas import OutputLayout
from schemas.layout import TABLES

LOG = logging.getLogger("hier_openimages")


class LaunchPlan:
    """What the launcher learns before building the graph: files, labels, chunks, buckets."""

    def __init__(self, config: RunConfig, inputs: readers.InputFiles):
        self.config = config
        self.inputs = inputs
        self.names = readers.read_class_descriptions(config.inputs.class_descriptions)
        hierarchy = config.inputs.hierarchy
        self.hierarchy = readers.read_hierarchy(hierarchy) if hierarchy else []
        self.headers: dict[str, readers.Header] = {}
        self.chunks: list[readers.Chunk] = []
        total_bytes = 0
        for split in config.inputs.splits:
            url = inputs.bbox[split]
            header = readers.read_header(url)
            self.headers[url] = header
            self.chunks += readers.plan_chunks(url, split, header, config.execution.chunk_bytes)
            total_bytes += io.size(url)
        self.n_buckets = buckets.bucket_count(total_bytes, config.execution.bucket_bytes)

    def input_urls(self) -> list[str]:
        """Every input file the run reads, for the run record's fingerprints."""
        urls = [self.inputs.bbox[split] for split in self.config.inputs.splits]
        extra = (self.config.inputs.class_descriptions, self.config.inputs.hierarchy)
        return urls + [url for url in extra if url]


def plan(opts: HierOpenImagesOptions) -> LaunchPlan:
    """Check the options, find the inputs (or write the synthetic set), read the small files.

    Raises:
        InputError: a bad option value, or inputs that are missing or unreadable.
    """
    check_values(opts)
    root = opts.input
    if root is None:
        root = OutputLayout(opts.output).synthetic_input
        LOG.info("no --input: writing the synthetic demo dataset to %s", root)
        synth.write_synthetic_dataset(root, seed=opts.seed)
        if not opts.skip_images:
            synth.write_synthetic_images(root, seed=opts.seed)
    inputs = readers.find_inputs(root)
    class_descriptions = opts.class_descriptions or inputs.class_descriptions
    if class_descriptions is None:
        raise InputError(
            f"no class descriptions in {root} (looked for "
            f"{', '.join(readers.CLASS_DESCRIPTION_NAMES)}); pass --class_descriptions"
        )
    hierarchy = opts.hierarchy or inputs.hierarchy
    config = resolve(opts, tuple(inputs.bbox), root, class_descriptions, hierarchy)
    return LaunchPlan(config, inputs)


def clear_outputs(layout: OutputLayout) -> None:
    """Remove this run's tables and run.json first: a rerun must not mix in stale parts."""
    for table in TABLES:
        io.remove_tree(layout.table_dir(table))
    io.remove_tree(layout.run_json)


def warn_if_isa_guard_off(config: RunConfig) -> None:
    """One WARNING line when the is-a guard did not run; the entry point calls it as the run
    ends, so that a user error before then stays the only line on stderr."""
    if not config.mining.isa_guard:
        LOG.warning("is-a guard off: %s", isa.guard_off_reason(config.inputs.hierarchy))
