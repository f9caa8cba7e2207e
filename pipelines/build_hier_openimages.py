"""Entry point: Open Images boxes -> validated boxes, rejects, pairs and label-pair statistics.

`python -m pipelines.build_hier_openimages [beam options] [options]`; with no --input it writes
the synthetic demo dataset first and runs on it. The launcher reads only headers and class
descriptions; workers read the CSVs in byte ranges (see README "Scale").
"""

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    TestOptions,
    WorkerOptions,
)
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from hierdata import io, readers, runinfo, synth
from hierdata.errors import InputError
from pipelines import graph
from pipelines.options import HierOpenImagesOptions, MiningConfig, resolve
from schemas import OutputLayout
from schemas.layout import TABLES

LOG = logging.getLogger("hier_openimages")


class LaunchPlan:
    """What the launcher learns before building the graph: files, labels, chunks, buckets."""

    def __init__(self, config: MiningConfig, inputs: readers.InputFiles):
        self.config = config
        self.inputs = inputs
        self.names = readers.read_class_descriptions(config.class_descriptions)
        self.hierarchy = readers.read_hierarchy(config.hierarchy) if config.hierarchy else []
        self.headers: dict[str, readers.Header] = {}
        self.chunks: list[readers.Chunk] = []
        total_bytes = 0
        for split in config.splits:
            url = inputs.bbox[split]
            header = readers.read_header(url)
            self.headers[url] = header
            self.chunks += readers.plan_chunks(url, split, header, config.chunk_bytes)
            total_bytes += io.size(url)
        self.total_bytes = total_bytes
        self.n_buckets = max(1, math.ceil(total_bytes / config.bucket_bytes))

    def input_urls(self) -> list[str]:
        urls = [self.inputs.bbox[s] for s in self.config.splits]
        return urls + [u for u in (self.config.class_descriptions, self.config.hierarchy) if u]


def plan(opts: HierOpenImagesOptions) -> LaunchPlan:
    """Find the inputs (or write the synthetic set), resolve the options, read the small files."""
    layout = OutputLayout(opts.output)
    root = opts.input
    if root is None:
        root = layout.synthetic_input
        LOG.info("no --input: writing the synthetic demo dataset to %s", root)
        synth.write_synthetic_dataset(root, seed=opts.seed)
        if not opts.skip_images:
            synth.write_synthetic_images(root, seed=opts.seed)
    inputs = readers.find_inputs(root)
    class_descriptions = opts.class_descriptions or inputs.class_descriptions
    if class_descriptions is None:
        raise InputError(
            f"no class descriptions in {root} (looked for "
            f"{', '.join(readers.CLASS_DESCRIPTION_NAMES)}); pass "
            f"--class_descriptions"
        )
    hierarchy = opts.hierarchy or inputs.hierarchy
    config = resolve(opts, tuple(inputs.bbox), root, class_descriptions, hierarchy)
    return LaunchPlan(config, inputs)


def clear_outputs(layout: OutputLayout) -> None:
    """Remove this run's tables and run.json first: a rerun must not mix in stale shards."""
    for table in TABLES:
        io.remove_tree(layout.table_dir(table))
    io.remove_tree(layout.run_json)


def pipeline_options(argv: Sequence[str]) -> PipelineOptions:
    options = PipelineOptions(argv)
    opts = options.view_as(HierOpenImagesOptions)
    if options.view_as(StandardOptions).runner is None and opts.local_workers > 1:
        direct = options.view_as(DirectOptions)
        direct.direct_num_workers = opts.local_workers
        direct.direct_running_mode = "multi_processing"
    return options


def run(argv: Sequence[str]) -> beam.runners.runner.PipelineResult:
    """Plan, build and run the pipeline to completion. Raises InputError."""
    options = pipeline_options(argv)
    opts = options.view_as(HierOpenImagesOptions)
    launch = plan(opts)
    config = launch.config
    layout = OutputLayout(config.output)
    runner_name = options.view_as(StandardOptions).runner
    run_record = {
        "started_at": runinfo.now(),
        "started_epoch": time.time(),
        "options": config.as_dict(),
        "runner": runner_name or "FnApiRunner",
        "versions": runinfo.versions(),
        "inputs": [runinfo.fingerprint(url) for url in launch.input_urls()],
        "chunks": len(launch.chunks),
        "image_buckets": launch.n_buckets,
    }
    if not options.view_as(TestOptions).dry_run:  # a dry run builds the job, writes nothing
        clear_outputs(layout)
    # Prism (the DirectRunner's default) downloads a binary; the FnApiRunner runs offline.
    runner = None if runner_name else FnApiRunner()
    pipeline = beam.Pipeline(runner=runner, options=options)
    graph.build(pipeline, launch, run_record)
    result = pipeline.run()
    result.wait_until_finish()
    return result


def print_help() -> None:
    """--help: this pipeline's options first, then every Beam option group."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.build_hier_openimages",
        description=(__doc__ or "").split("\n", 1)[0],
        add_help=False,
    )
    HierOpenImagesOptions._add_argparse_args(parser.add_argument_group("HierOpenImages"))
    for group in (StandardOptions, DirectOptions, GoogleCloudOptions, WorkerOptions, SetupOptions):
        group._add_argparse_args(parser.add_argument_group(f"Beam {group.__name__}"))
    parser.print_help()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)  # per-bundle chatter
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print_help()
        return 0
    try:
        run(argv)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a worker's InputError arrives wrapped by the runner
        marker = next(
            (
                line
                for line in str(err).splitlines()
                if "RejectBoundExceeded:" in line or "InputError:" in line
            ),
            None,
        )
        if marker is None:
            raise
        print(f"error: {marker.split('Error:', 1)[1].strip()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
