"""Command line: `python -m hierdata.audit OUTPUT [--compare OTHER]` writes OUTPUT/report/.

OUTPUT and OTHER are pipeline outputs: local paths or fsspec URLs such as gs://bucket/run.
"""

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from hierdata.audit.report import build_report
from hierdata.errors import run_command
from schemas.report_layout import STATS_JSON, ReportLayout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hierdata.audit",
        description=f"Write an audit report (HTML, PNG plots, {STATS_JSON}) under OUTPUT/report/.",
    )
    parser.add_argument("output", help="pipeline output root (local path or fsspec URL)")
    parser.add_argument(
        "--compare", metavar="OTHER", help="another pipeline output to compare with"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def body() -> None:
        started = time.perf_counter()
        build_report(args.output, args.compare)
        index_html = ReportLayout.of_output(args.output).index_html
        print(f"wrote {index_html} in {time.perf_counter() - started:.1f} s")

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
