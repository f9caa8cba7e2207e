"""Option spellings: every command accepts `--max-steps` as well as `--max_steps`.

One function, used by every entry point (pipeline, audit, train, evaluate, experiment).
"""

from collections.abc import Collection, Sequence


def underscore_option_names(argv: Sequence[str], known: Collection[str]) -> list[str]:
    """`argv` with each dashed spelling of a known option rewritten to the known one.

    Only a token that starts with "--" and is not itself a known flag changes, and only when
    its dashes-to-underscores form is known: `--max-steps 5` -> `--max_steps 5`,
    `--max-steps=5` -> `--max_steps=5`. Flags that are known with dashes (another library's
    own spelling), values, positional arguments and everything after a bare "--" are kept.

    Args:
        argv: the command-line arguments (without the program name).
        known: the command's flags as the parser knows them, "--" included.
    Returns:
        A new list of the same length.
    """
    out: list[str] = []
    rest = False
    for token in argv:
        if rest or not token.startswith("--") or token == "--":
            rest = rest or token == "--"
            out.append(token)
            continue
        name, sep, value = token.partition("=")
        if name not in known:
            underscored = "--" + name[2:].replace("-", "_")
            if underscored in known:
                name = underscored
        out.append(name + sep + value)
    return out


def parser_flags(parser) -> set[str]:
    """Every long flag an argparse parser (or Beam's) knows."""
    return {
        flag for action in parser._actions for flag in action.option_strings if flag[:2] == "--"
    }
