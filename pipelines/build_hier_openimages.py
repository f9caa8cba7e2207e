"""Entry point: Open Images boxes -> tables, label-pair statistics, trees and WebDataset shards.

`python -m pipelines.build_hier_openimages [beam options] [options]`; with no --input it writes
the synthetic demo dataset first and runs on it. A user error (bad option, missing input,
reject bound) is one `error:` line on stderr and exit code 2.
"""

import logging
import os
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
    TestOptions,
)
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.environments import SubprocessSDKEnvironment

from hierdata import outputs, runinfo
from hierdata.cli_args import underscore_option_names
from hierdata.errors import run_command
from pipelines import graph, progress
from pipelines.arguments import check_arguments, known_flags
from pipelines.help import help_text
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
    check_arguments(argv)
    options = PipelineOptions(argv)
    dry_run = bool(options.view_as(TestOptions).dry_run)
    launch = plan(options.view_as(HierOpenImagesOptions), dry_run)
    config = launch.config
    runner_name = options.view_as(StandardOptions).runner
    started = runinfo.start_record(
        config.as_dict(),
        runner_name or "FnApiRunner",
        launch.input_urls(),
        len(launch.chunks),
        launch.n_buckets,
    )
    if not dry_run:  # a dry run builds the job, writes nothing
        shard_splits = () if config.skip_images else config.inputs.splits
        clear_outputs(OutputLayout(config.output), shard_splits)
    runner = None if runner_name else local_runner(options)
    pipeline = beam.Pipeline(runner=runner, options=options)
    graph.build(pipeline, launch, started)
    # Progress and the summary go to stdout: stderr carries logs and the one error line.
    with progress.reporting(enabled=runner is not None and not dry_run, stream=sys.stdout):
        result = pipeline.run()
        result.wait_until_finish()
    if not dry_run:
        record = outputs.read_run_record(config.output)
        print("\n".join(progress.summary_lines(record, config.output)), flush=True)
    warn_if_isa_guard_off(config)
    return result


DATAFLOW_RUNNER_LOGGER = "apache_beam.runners.dataflow.dataflow_runner"
DATAFLOW_CLIENT_LOGGER = "apache_beam.runners.dataflow.internal.apiclient"


class _DataflowJobLines(logging.Filter):
    """Of the Dataflow API client's INFO records keep the job id and console URL only (it also
    logs the whole job request and every staged file)."""

    _KEEP = ("Created job with id", "To access the Dataflow monitoring console")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or str(record.msg).startswith(self._KEEP)


def configure_logging() -> None:
    """INFO for this pipeline and a Dataflow job's id, console URL, state changes and job
    messages; WARNING for the rest of Beam (per-bundle chatter); user errors stay off the log
    (the entry point prints them once)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger(DATAFLOW_RUNNER_LOGGER).setLevel(logging.INFO)  # state, job messages
    client = logging.getLogger(DATAFLOW_CLIENT_LOGGER)
    client.setLevel(logging.INFO)
    if not any(isinstance(f, _DataflowJobLines) for f in client.filters):
        client.addFilter(_DataflowJobLines())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, QuietUserErrors) for f in handler.filters):
            handler.addFilter(QuietUserErrors())


def print_help() -> None:
    """--help: this pipeline's options first, grouped, then examples, then Beam's options."""
    print(help_text((__doc__ or "").split("\n", 1)[0]), end="")


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    argv = underscore_option_names(sys.argv[1:] if argv is None else argv, known_flags())
    if "--help" in argv or "-h" in argv:
        print_help()
        return 0

    def body() -> None:
        run(argv)

    return run_command(body, classify=user_error)


if __name__ == "__main__":
    sys.exit(main())
