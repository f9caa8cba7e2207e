"""Entry point: Open Images boxes -> tables, label-pair statistics, trees and WebDataset shards.

`python -m pipelines.build_hier_openimages [beam options] [options]`; with no --input it writes
the synthetic demo dataset first and runs on it. A user error (bad option, missing input,
reject bound) is one `error:` line on stderr and exit code 2.
"""

import argparse
import logging
import os
import sys
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
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.environments import SubprocessSDKEnvironment

from hierdata import runinfo
from hierdata.errors import run_command
from pipelines import graph
from pipelines.launch import clear_outputs, plan, warn_if_isa_guard_off
from pipelines.options import HierOpenImagesOptions
from pipelines.user_errors import QuietUserErrors, user_error
from schemas import OutputLayout


def local_runner(options: PipelineOptions) -> FnApiRunner:
    """The FnApiRunner (offline; Prism, the DirectRunner's default, downloads a binary).

    With --local_workers N > 1 it runs N worker processes with their stderr on /dev/null: a
    failing worker prints its traceback there, and the same text comes back to this process
    in the runner's error, so a user error stays one line. (The runner's own
    "multi_processing" mode would give the workers this process's stderr, so the environment
    is passed in instead of that mode.)
    """
    workers = options.view_as(HierOpenImagesOptions).local_workers
    if workers == 1:
        return FnApiRunner()
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = workers
    direct.direct_running_mode = None  # keep the environment below
    # The runner relays every worker's start-up warnings ("No semi_persistent_directory");
    # keep its errors only.
    logging.getLogger(local_job_service.__name__).setLevel(logging.ERROR)
    command = f"{sys.executable} -m apache_beam.runners.worker.sdk_worker_main 2>{os.devnull}"
    return FnApiRunner(default_environment=SubprocessSDKEnvironment.from_command_string(command))


def run(argv: Sequence[str]) -> beam.runners.runner.PipelineResult:
    """Plan, build and run the pipeline to completion. Raises InputError."""
    options = PipelineOptions(argv)
    launch = plan(options.view_as(HierOpenImagesOptions))
    config = launch.config
    runner_name = options.view_as(StandardOptions).runner
    started = runinfo.start_record(
        config.as_dict(),
        runner_name or "FnApiRunner",
        launch.input_urls(),
        len(launch.chunks),
        launch.n_buckets,
    )
    if not options.view_as(TestOptions).dry_run:  # a dry run builds the job, writes nothing
        clear_outputs(OutputLayout(config.output))
    runner = None if runner_name else local_runner(options)
    pipeline = beam.Pipeline(runner=runner, options=options)
    graph.build(pipeline, launch, started)
    result = pipeline.run()
    result.wait_until_finish()
    warn_if_isa_guard_off(config)
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
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietUserErrors())
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print_help()
        return 0

    def body() -> None:
        run(argv)

    return run_command(body, classify=user_error)


if __name__ == "__main__":
    sys.exit(main())
