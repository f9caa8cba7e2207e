"""The `hier-openimages` console command: `hier-openimages SUBCOMMAND [options]`.

Each subcommand hands the rest of the command line to an existing entry point's `main`; the
training ones are imported only when asked for, so `build` and `audit` need no torch.
"""

import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module whose main runs it, the python -m spelling, what it does)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "build": (
        "pipelines.build_hier_openimages",
        "pipelines.build_hier_openimages",
        "run the Beam pipeline: tables, label tree, WebDataset shards",
    ),
    "audit": (
        "hierdata.audit.__main__",
        "hierdata.audit",
        "write the audit report of a pipeline output",
    ),
    "train": ("training.train", "training.train", "train an encoder on the shards (torch)"),
    "evaluate": (
        "training.eval.evaluate",
        "training.evaluate",
        "evaluate a checkpoint or a zero-shot encoder on the shards (torch)",
    ),
    "experiment": (
        "training.experiment",
        "training.experiment",
        "train Lorentz and Euclidean models and compare them with zero-shot (torch)",
    ),
}


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        "usage: hier-openimages SUBCOMMAND [options]",
        "",
        "Visual part-of hierarchies from Open Images boxes. Subcommands:",
        "",
        *(
            f"  {name:<{width}}  {text}\n  {'':<{width}}  (python -m {spelling})"
            for name, (_, spelling, text) in SUBCOMMANDS.items()
        ),
        "",
        "`hier-openimages SUBCOMMAND --help` lists its options; every option may be spelt with",
        "dashes or underscores (--max-steps, --max_steps).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        sys.stderr.write(f"error: unknown subcommand {name!r}; one of {', '.join(SUBCOMMANDS)}\n")
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
