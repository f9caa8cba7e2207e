"""The pipeline's --help: the project's options first, grouped, each with its default and one
line of help; then a few examples; then Beam's own options (runner, Google Cloud, workers)."""

import argparse

from apache_beam.options.pipeline_options import (
    DirectOptions,
    GoogleCloudOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

from pipelines.options import (
    CROPS,
    CROSS_IMAGE,
    EXECUTION,
    INPUTS,
    MINING,
    OPTIONS,
    RUN,
    SHARDING,
)

PROG = "python -m pipelines.build_hier_openimages"

# The option groups in the order a user meets them.
GROUP_TITLES = (
    (INPUTS, "inputs"),
    (RUN, "output and run"),
    (MINING, "mining rules"),
    (CROSS_IMAGE, "cross-image pairs"),
    (CROPS, "crops"),
    (SHARDING, "sharding"),
    (EXECUTION, "execution"),
)

EXAMPLES = f"""examples:
  {PROG}
      the synthetic demo: writes ./hier_openimages_out (tables, trees, shards)
  {PROG} --input /data/openimages --output /data/hier_out \\
      --images 's3://open-images-dataset/{{split}}/{{image_id}}.jpg' --s3_anonymous \\
      --max_images_per_split 1000 --local_workers 2
      a real-data subset, images read from the public Open Images bucket
  {PROG} --input gs://B/openimages --output gs://B/hier_out \\
      --runner=DataflowRunner --project=P --region=us-central1 \\
      --temp_location=gs://B/tmp --setup_file=./pyproject.toml
      the full set on Dataflow (README "Run on Dataflow")
  Every option may be spelt with dashes too: --min-pair-frequency 20.
"""

BEAM_GROUPS = (StandardOptions, DirectOptions, GoogleCloudOptions, WorkerOptions, SetupOptions)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32, width=100)


def project_help(description: str) -> str:
    """Usage, the project's option groups (defaults included) and the examples."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [options] [Beam options]",
        description=description,
        epilog=EXAMPLES,
        formatter_class=_formatter,
        add_help=False,
    )
    for group, title in GROUP_TITLES:
        arguments = parser.add_argument_group(title)
        for option in OPTIONS:
            if option.group == group:
                option.add_to(arguments)
    return parser.format_help()


def beam_help() -> str:
    """Beam's own option groups, without a second usage line."""
    parser = argparse.ArgumentParser(
        usage=argparse.SUPPRESS, formatter_class=_formatter, add_help=False
    )
    for group in BEAM_GROUPS:
        group._add_argparse_args(parser.add_argument_group(f"Beam {group.__name__}"))
    return parser.format_help()


def help_text(description: str) -> str:
    """The whole --help text."""
    return (
        project_help(description)
        + "\nBeam's own options (the runner and where it runs) follow.\n\n"
        + beam_help()
    )
