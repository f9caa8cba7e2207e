"""Command line: `python -m hierdata.audit OUTPUT [--compare OTHER] [--out DIR]` writes
OUTPUT/report/ (or DIR). OUTPUT, OTHER and DIR: local paths or fsspec URLs such as gs://b/run.
"""

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from hierdata.audit.report import build_report
from hierdata.cli_args import parser_flags, underscore_option_names
from hierdata.errors import run_command
from hierdata.outputs import unreadable_output
from schemas.report_layout import STATS_JSON, ReportLayout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hierdata.audit",
        description=f"Write an audit report (HTML, PNG plots, {STATS_JSON}) under OUTPUT/report/.",
        allow_abbrev=False,
    )
    parser.add_argument("output", help="pipeline output root (local path or fsspec URL)")
    parser.add_argument(
        "--compare", metavar="OTHER", help="another pipeline output to compare with"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="write the report here instead (OUTPUT is then only read: a bucket you may only "
        "read can be audited); default: OUTPUT/report",
    )
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(underscore_option_names(argv, parser_flags(parser)))
    # Warnings only: a data error must be the first and only line on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def body() -> None:
        started = time.perf_counter()
        build_report(args.output, args.compare, args.out)
        report = ReportLayout(args.out) if args.out else ReportLayout.of_output(args.output)
        index_html = report.index_html
        print(f"wrote {index_html} in {time.perf_counter() - started:.1f} s")

    return run_command(body, classify=unreadable_output)


if __name__ == "__main__":
    sys.exit(main())
