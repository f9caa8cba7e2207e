"""Command line: `python -m hierdata.audit OUTPUT [--compare OTHER]` writes OUTPUT/report/.

OUTPUT and OTHER are pipeline outputs: local paths or fsspec URLs such as gs://bucket/run.
"""

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from hierdata.audit.report import build_report
from hierdata.errors import InputError
from schemas import OutputLayout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hierdata.audit",
        description="Write an audit report (HTML, PNG plots, stats.json) under OUTPUT/report/.",
    )
    parser.add_argument("output", help="pipeline output root (local path or fsspec URL)")
    parser.add_argument(
        "--compare", metavar="OTHER", help="another pipeline output to compare with"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        build_report(args.output, args.compare)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report = OutputLayout(args.output).report_dir
    print(f"wrote {report}/index.html in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
