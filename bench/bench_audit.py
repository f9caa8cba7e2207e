"""Audit report benchmark: tables from N synthetic Open Images-like boxes, then the report.

Builds the tables with bench/oi_like.py's generator and the pipeline (--skip_images), times
`python -m hierdata.audit OUTPUT` end to end (imports included) and prints its stage timings.
The report should take under 60 s at N = 1e6 (issue "Audit report", Scale).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from oi_like import write_dataset

REPO = Path(__file__).resolve().parents[1]
BOUND_S = 60.0


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _run(command: list[str]) -> float:
    """Run a module in a fresh interpreter from the repo root; its wall-clock seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *command], cwd=REPO, env=_env(), capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:2])} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return seconds


def build_tables(work: Path, args: argparse.Namespace) -> tuple[Path, float]:
    """oi_like dataset of args.n_boxes boxes -> pipeline output (tables and trees only)."""
    root, out = work / "input", work / "output"
    write_dataset(root, args.n_boxes, seed=args.seed)
    seconds = _run(
        [
            "-m",
            "pipelines.build_hier_openimages",
            "--input",
            str(root),
            "--output",
            str(out),
            "--skip_images",
            "--min_pair_frequency",
            str(args.min_pair_frequency),
            "--min_pair_proportion",
            str(args.min_pair_proportion),
            "--local_workers",
            str(args.local_workers),
        ]
    )
    return out, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n_boxes", type=int, default=1_000_000)
    parser.add_argument(
        "--output", type=Path, help="an existing pipeline output: time its report, build nothing"
    )
    parser.add_argument("--min_pair_frequency", type=int, default=20)
    parser.add_argument("--min_pair_proportion", type=float, default=0.05)
    parser.add_argument("--local_workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=REPO / "bench_out" / "bench_audit.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_audit_") as work:
        pipeline_s = None
        out = args.output
        if out is None:
            out, pipeline_s = build_tables(Path(work), args)
            print(f"tables from {args.n_boxes:,} boxes built in {pipeline_s:.1f} s")
        report_s = _run(["-m", "hierdata.audit", str(out)])
        stats = json.loads((out / "report" / "stats.json").read_text())
    boxes = sum(stats["counts"]["boxes"].values())
    stages = stats["timings_seconds"]
    print(
        f"report on {boxes:,} boxes, {stats['label_pairs']['candidate']:,} label pairs, "
        f"{stats['tree']['labels']} labels: {report_s:.1f} s end to end "
        f"({sum(stages.values()):.1f} s in build_report)"
    )
    print("  " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in stages.items()))
    verdict = f"{'PASS' if report_s < BOUND_S else 'FAIL'} report under {BOUND_S:.0f} s"
    print(verdict)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "boxes": boxes,
                "pipeline_s": pipeline_s,
                "report_s": report_s,
                "stages_s": stages,
                "verdict": verdict,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    return 0 if report_s < BOUND_S else 1


if __name__ == "__main__":
    sys.exit(main())
