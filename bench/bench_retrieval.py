"""Retrieval scoring benchmark: chunked angle/distance top-K against a plain cosine matmul top-K.

Each measurement runs in its own subprocess, so its peak memory is a clean ru_maxrss delta.
"""

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.eval.retrieval import pairwise_scores, topk_scores  # noqa: E402
from training.geometry import exp_map0, pairwise_exterior_angle  # noqa: E402

CURV = 1.0
QUERY_CHUNK = 256
# method -> (score, curvature) for training.eval.retrieval.topk_scores
METHODS = {
    "cosine_topk_scores": ("cosine", None),
    "angle_p2c": ("angle_p2c", CURV),
    "angle_c2p": ("angle_c2p", CURV),
    "distance": ("distance", CURV),
    "euclidean_angle_p2c": ("angle_p2c", None),
}
BASELINE = "cosine_plain"


def make_points(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """Lorentz points: exp_map0 of Gaussian tangent vectors (radius ~ 0.3 sqrt(dim)).

    Built 8192 rows at a time so that no temporary raises the memory high-water mark above the
    result itself: the ru_maxrss delta of a method is then all its own.
    """
    points = torch.empty(n, dim)
    for start in range(0, n, 8192):
        block = points[start : start + 8192]
        block.copy_(exp_map0(torch.randn(block.shape, generator=generator).mul_(0.3), CURV))
    return points


def make_data(n_queries: int, n_gallery: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return make_points(n_queries, dim, generator), make_points(n_gallery, dim, generator)


def cosine_plain(queries: torch.Tensor, gallery: torch.Tensor, k: int) -> torch.Tensor:
    """The reference: normalise, then one matmul and topk per chunk of queries."""
    queries = torch.nn.functional.normalize(queries, dim=1)
    gallery = torch.nn.functional.normalize(gallery, dim=1)
    return torch.cat(
        [
            (queries[i : i + QUERY_CHUNK] @ gallery.T).topk(k, dim=1).indices
            for i in range(0, len(queries), QUERY_CHUNK)
        ]
    )


def naive_angle(queries: torch.Tensor, gallery: torch.Tensor, k: int) -> torch.Tensor:
    """geometry.pairwise_exterior_angle per chunk, then topk: every angle evaluated in full."""
    return torch.cat(
        [
            (math.pi - pairwise_exterior_angle(queries[i : i + QUERY_CHUNK], gallery, CURV))
            .topk(k, dim=1)
            .indices
            for i in range(0, len(queries), QUERY_CHUNK)
        ]
    )


def agreement(queries: torch.Tensor, gallery: torch.Tensor, k: int, method: str) -> float:
    """Recall of the float64 brute-force top-k sets of 32 queries by the float32 top-k.

    Sets, not positions: near-ties closer than float32 rounding swap places in both this and
    geometry's own float32 pairwise angles.
    """
    if method not in METHODS:
        return float("nan")
    score, curv = METHODS[method]
    sample = queries[:32]
    brute = pairwise_scores(sample.double(), gallery.double(), score, curv)
    want = brute.topk(k, dim=1, largest=score != "distance").indices
    got = topk_scores(sample, gallery, k, score, curv)[1]
    return float((got[:, :, None] == want[:, None, :]).any(2).float().mean())


def worker(method: str, n_queries: int, n_gallery: int, dim: int, k: int) -> dict:
    """One timed run in this process: seconds and peak resident memory beyond the inputs."""
    queries, gallery = make_data(n_queries, n_gallery, dim)
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if method == BASELINE:
        cosine_plain(queries, gallery, k)
    elif method == "naive_angle_p2c":
        naive_angle(queries, gallery, k)
    else:
        topk_scores(queries, gallery, k, *METHODS[method], query_chunk=QUERY_CHUNK)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "method": method,
        "seconds": seconds,
        "peak_extra_mb": (peak_kb - before_kb) / 1024,
        "inputs_mb": (queries.nbytes + gallery.nbytes) / 2**20,
        "agreement": agreement(queries, gallery, k, method),
    }


def run_worker(method: str, args: argparse.Namespace, n_queries: int) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--queries",
        str(n_queries),
        "--gallery",
        str(args.gallery),
        "--dim",
        str(args.dim),
        "--k",
        str(args.k),
        "--threads",
        str(args.threads),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--gallery", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per method")
    parser.add_argument(
        "--methods",
        default=",".join([BASELINE, *METHODS]),
        help=f"comma list of {BASELINE}, naive_angle_p2c, {', '.join(METHODS)}",
    )
    parser.add_argument(
        "--naive_queries",
        type=int,
        default=1024,
        help="queries for naive_angle_p2c (its time is scaled to --queries)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch CPU threads; 1 gives stable timings on a shared machine, "
        "where OpenMP barriers stall whenever another process holds a core",
    )
    parser.add_argument("--out", type=Path, help="also write the runs as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args.worker, args.queries, args.gallery, args.dim, args.k)))
        return

    methods = args.methods.split(",")
    runs: dict[str, list[dict]] = {method: [] for method in methods}
    # Interleaved rounds: load from other processes hits every method alike; best-of is kept.
    for _ in range(args.rounds):
        for method in methods:
            n = args.naive_queries if method == "naive_angle_p2c" else args.queries
            run = run_worker(method, args, n)
            run["seconds"] *= args.queries / n
            runs[method].append(run)
            print(f"  {method:22s} {run['seconds']:8.2f} s", file=sys.stderr, flush=True)

    base_runs = [r["seconds"] for r in runs.get(BASELINE, [])] or [float("nan")]
    base, base_median = min(base_runs), statistics.median(base_runs)
    print(
        f"\n{args.queries} queries x {args.gallery} candidates x {args.dim} dims, top-{args.k}, "
        f"CPU threads {torch.get_num_threads()}, query chunk {QUERY_CHUNK}, "
        f"best of {args.rounds} interleaved rounds\n"
    )
    print(
        "| method | best s | median s | x plain cosine (best) | x plain cosine (median) "
        "| peak extra MB | top-k set recall vs float64 |"
    )
    print("|---|---|---|---|---|---|---|")
    for method, method_runs in runs.items():
        seconds = [r["seconds"] for r in method_runs]
        print(
            f"| {method} | {min(seconds):.2f} | {statistics.median(seconds):.2f} "
            f"| {min(seconds) / base:.2f} | {statistics.median(seconds) / base_median:.2f} "
            f"| {max(r['peak_extra_mb'] for r in method_runs):.0f} "
            f"| {method_runs[0]['agreement']:.4f} |"
        )
    if args.out:
        args.out.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
