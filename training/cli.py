"""Command lines from config dataclasses: every field becomes a `--field value` option.

Shared by training.train and training.eval.evaluate, so both parse and document options alike.
"""

import argparse
import sys
import typing
from dataclasses import field, fields

from hierdata.cli_args import parser_flags, underscore_option_names


def option(default, help: str):  # noqa: A002 - argparse's name for it
    """A dataclass field with its --help text."""
    return field(default=default, metadata={"help": help})


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_dataclass(
    config_type,
    argv: list[str] | None,
    prog: str,
    description: str | None,
    dashed_aliases: bool = False,
):
    """An instance of `config_type` from `--field value` options (bare `--flag` for booleans).

    Args:
        dashed_aliases: also list --field-name for --field_name in --help (either spelling
            is accepted anyway: hierdata.cli_args.underscore_option_names).
    Unknown or malformed options exit with code 2 (argparse's own behaviour).
    """
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    hints = typing.get_type_hints(config_type)
    for item in fields(config_type):
        kind = hints[item.name]
        if kind is bool:
            extra = {"type": parse_bool, "nargs": "?", "const": True}
        else:
            extra = {"type": str if kind == (str | None) else kind}
        names = [f"--{item.name}"]
        if dashed_aliases and "_" in item.name:
            names.append(f"--{item.name.replace('_', '-')}")
        parser.add_argument(
            *names,
            dest=item.name,
            default=item.default,
            help=f"{item.metadata['help']} (default: {item.default})",
            **extra,
        )
    argv = sys.argv[1:] if argv is None else argv
    argv = underscore_option_names(argv, parser_flags(parser))
    return config_type(**vars(parser.parse_args(argv)))
