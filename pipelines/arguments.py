"""The command line as a whole: every argument must belong to this pipeline or to Beam.

Beam's own PipelineOptions keeps unknown arguments with a warning and runs on the defaults;
here a misspelt option or a stray argument is a user error before any work starts.
"""

import difflib
from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

import pipelines.options  # noqa: F401  (registers HierOpenImagesOptions with Beam's classes)
from hierdata.cli_args import parser_flags
from hierdata.errors import InputError


class _StrictParser(_BeamArgumentParser):
    """Beam's parser, but a parse error is an InputError instead of usage text and exit."""

    def error(self, message: str):
        raise InputError(message)


def _all_options_parser(parser: _BeamArgumentParser) -> _BeamArgumentParser:
    """``parser`` with the arguments of every PipelineOptions subclass: this pipeline's and
    all of Beam's (runner, Google Cloud, worker, setup, experiments ...)."""
    # The subclasses of one name may be imported twice (Beam's own guard): keep the first.
    classes = {str(cls): cls for cls in reversed(PipelineOptions.__subclasses__())}
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def check_arguments(argv: Sequence[str]) -> None:
    """Refuse what no option class knows: a misspelt option, a stray positional argument.

    Every option Beam or Dataflow accepts still passes, including --experiments=... and
    --dataflow_job_file.

    Raises:
        InputError: one line naming the first unknown argument (with the closest option name
            when there is one), or argparse's message for a value it cannot parse.
    """
    parser = _all_options_parser(_StrictParser(allow_abbrev=False, add_help=False))
    _, unknown = parser.parse_known_args(list(argv))
    if not unknown:
        return
    first = unknown[0]
    if not first.startswith("-"):
        raise InputError(f"unexpected argument {first!r}: every option is --name value")
    name = first.split("=", 1)[0]
    flags = [flag for action in parser._actions for flag in action.option_strings]
    close = difflib.get_close_matches(name, flags, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise InputError(f"unknown option {name}{hint}; see --help")


def known_flags() -> set[str]:
    """Every long flag of this pipeline and of Beam's option classes, as their parsers spell
    them (ours with underscores; Beam's own, such as --job-server-timeout, as Beam does)."""
    return parser_flags(
        _all_options_parser(_BeamArgumentParser(allow_abbrev=False, add_help=False))
    )
