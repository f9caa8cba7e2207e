"""Mining benchmark: the Beam pipeline (--skip_images) against a one-process polars reference.

Checks both give the same box_box candidates and label-pair statistics, then prints timings.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import polars as pl
from oi_like import write_dataset

REPO = Path(__file__).resolve().parents[1]
MIN_BOX_AREA = 0.01  # DESIGN defaults; the pipeline runs with its defaults for these three
CONTAINMENT = 0.8
DUPLICATE_IOU = 0.9
SAME_OBJECT_IOU = 0.7
IOU_BINS = 100
PAIR_KEY = ["image_id", "parent_box", "child_box"]
LABEL_KEY = ["parent_label", "child_label"]
STATS = [
    "frequency", "parents_with_child", "parent_boxes", "children_with_parent", "child_boxes",
    "iou_median", "near_duplicate_share", "same_object", "accepted",
]  # fmt: skip


def histogram_median(candidates: pl.LazyFrame) -> pl.LazyFrame:
    """Per label pair: the median IoU read off IOU_BINS equal bins, interpolated within the bin
    where the running count reaches half the pairs (the pipeline's iou_median)."""
    bins = (
        candidates.with_columns(
            iou_bin=(pl.col("iou") * IOU_BINS).floor().clip(0, IOU_BINS - 1).cast(pl.Int32)
        )
        .group_by(*LABEL_KEY, "iou_bin")
        .agg(pairs=pl.len())
        .sort(*LABEL_KEY, "iou_bin")
        .with_columns(
            running=pl.col("pairs").cum_sum().over(LABEL_KEY),
            half=pl.col("pairs").sum().over(LABEL_KEY) / 2,
        )
    )
    return (
        bins.filter(pl.col("running") >= pl.col("half"))
        .group_by(LABEL_KEY)
        .agg(pl.all().first())
        .select(
            *LABEL_KEY,
            iou_median=(
                pl.col("iou_bin")
                + (pl.col("half") - (pl.col("running") - pl.col("pairs"))) / pl.col("pairs")
            )
            / IOU_BINS,
        )
    )


def reference_mining(root: Path, min_frequency: int, min_proportion: float):
    """DESIGN "Rules" in polars: returns (candidates PAIR_KEY + labels, label-pair stats).

    box_id is the 0-based line order within the image; boxes with area < MIN_BOX_AREA are
    dropped (equality kept); containment >= CONTAINMENT and IoU < DUPLICATE_IOU.
    """
    boxes = (
        pl.scan_csv(root / "train-annotations-bbox.csv", schema_overrides={"ImageID": pl.String})
        .select(
            image_id="ImageID",
            box_id=pl.int_range(pl.len(), dtype=pl.Int32).over("ImageID"),
            label="LabelName",
            xmin="XMin",
            xmax="XMax",
            ymin="YMin",
            ymax="YMax",
            group_of="IsGroupOf",
            area=(pl.col("XMax") - pl.col("XMin")) * (pl.col("YMax") - pl.col("YMin")),
        )
        .filter(pl.col("area") >= MIN_BOX_AREA)
        .collect()
        .lazy()
    )
    geometry = ["box_id", "label", "xmin", "xmax", "ymin", "ymax", "area"]
    parents = boxes.select("image_id", *(pl.col(c).alias(f"p_{c}") for c in geometry))
    children = boxes.filter(pl.col("group_of") != 1).select(
        "image_id", *(pl.col(c).alias(f"c_{c}") for c in geometry)
    )

    def overlap(lo: str, hi: str) -> pl.Expr:
        low = pl.max_horizontal(f"p_{lo}", f"c_{lo}")
        return (pl.min_horizontal(f"p_{hi}", f"c_{hi}") - low).clip(lower_bound=0.0)

    intersection = overlap("xmin", "xmax") * overlap("ymin", "ymax")
    candidates = (
        parents.join(children, on="image_id")
        .filter((pl.col("p_label") != pl.col("c_label")) & (pl.col("p_area") > pl.col("c_area")))
        .with_columns(intersection=intersection)
        .filter(
            (pl.col("intersection") / pl.col("c_area") >= CONTAINMENT)
            & (
                pl.col("intersection")
                / (pl.col("p_area") + pl.col("c_area") - pl.col("intersection"))
                < DUPLICATE_IOU
            )
        )
        .select(
            "image_id",
            parent_box="p_box_id",
            child_box="c_box_id",
            parent_label="p_label",
            child_label="c_label",
            iou=pl.col("intersection")
            / (pl.col("p_area") + pl.col("c_area") - pl.col("intersection")),
        )
        .collect(engine="streaming")
    )
    parent_boxes = boxes.group_by(parent_label="label").agg(parent_boxes=pl.len())
    child_boxes = boxes.group_by(child_label="label").agg(child_boxes=pl.len())
    stats = (
        candidates.lazy()
        .group_by(LABEL_KEY)
        .agg(
            frequency=pl.len(),
            parents_with_child=pl.struct("image_id", "parent_box").n_unique(),
            children_with_parent=pl.struct("image_id", "child_box").n_unique(),
            near_duplicate_share=(pl.col("iou") >= 0.5).mean(),
        )
        .join(parent_boxes, on="parent_label")
        .join(child_boxes, on="child_label")
        .join(histogram_median(candidates.lazy()), on=LABEL_KEY)
        .with_columns(
            proportion=pl.col("parents_with_child") / pl.col("parent_boxes"),
            same_object=pl.col("iou_median") >= SAME_OBJECT_IOU,
        )
        .with_columns(
            accepted=(pl.col("frequency") >= min_frequency)
            & (pl.col("proportion") >= min_proportion)
            & ~pl.col("same_object")
        )
        .collect()
    )
    return candidates, stats


def run_pipeline(root: Path, out: Path, args: argparse.Namespace) -> float:
    """Runs the Beam entry point as a subprocess; returns its wall-clock seconds."""
    command = [
        sys.executable, "-m", "pipelines.build_hier_openimages",
        "--input", str(root), "--output", str(out), "--skip_images",
        "--min_pair_frequency", str(args.min_pair_frequency),
        "--min_pair_proportion", str(args.min_pair_proportion),
        "--local_workers", str(args.local_workers),
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pipeline failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return seconds


def run_json_seconds(out: Path) -> float | None:
    """The pipeline's own time from run.json: an elapsed-seconds field, else finished - started.

    started_at/finished_at are ISO timestamps (whole seconds), so that fallback is +-1 s.
    """
    path = out / "run.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    for key in ("elapsed_s", "elapsed_seconds", "wall_s", "duration_s", "seconds"):
        if isinstance(record.get(key), int | float):
            return float(record[key])
    stamps = [record.get(k) for k in ("started_at", "finished_at")]
    if all(isinstance(stamp, str) for stamp in stamps):
        started, finished = (datetime.fromisoformat(stamp) for stamp in stamps)
        return (finished - started).total_seconds()
    return None


def read_table(out: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(out / "tables" / table / "part-*.parquet")


def compare(ref_pairs: pl.DataFrame, ref_stats: pl.DataFrame, out: Path) -> list[str]:
    """Differences between the reference and the pipeline's tables, as printable lines."""
    problems = []
    beam_pairs = read_table(out, "candidates").filter(pl.col("kind") == "box_box")
    beam_pairs = beam_pairs.select(*PAIR_KEY, "parent_label", "child_label")
    ref_pairs = ref_pairs.with_columns(pl.col("parent_box", "child_box").cast(pl.Int32))
    sides = (("reference", ref_pairs, beam_pairs), ("beam", beam_pairs, ref_pairs))
    for name, left, right in sides:
        only = left.join(right, on=PAIR_KEY, how="anti")
        if only.height:
            problems.append(f"{only.height} candidate pairs only in {name}, e.g.\n{only.head(5)}")
    if beam_pairs.height != beam_pairs.unique(PAIR_KEY).height:
        problems.append("beam candidates contain duplicate (image_id, parent_box, child_box)")
    beam_stats = read_table(out, "label_pairs").select(*LABEL_KEY, *STATS)
    both = ref_stats.select(*LABEL_KEY, *STATS).join(
        beam_stats, on=LABEL_KEY, how="full", coalesce=True, suffix="_beam"
    )
    # Floats from the same formula in polars and numpy: equal up to the last bits.
    both = both.with_columns(pl.col(pl.Float64).round(9))
    differs = pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_beam")) for c in STATS)
    bad = both.filter(differs)
    if bad.height:
        problems.append(f"{bad.height} label pairs differ, e.g.\n{bad.head(5)}")
    return problems


def measure(n_boxes: int, args: argparse.Namespace, work: Path) -> dict:
    root, out = work / f"input_{n_boxes}", work / f"output_{n_boxes}"
    train = write_dataset(root, n_boxes, seed=args.seed)
    start = time.perf_counter()
    ref_pairs, ref_stats = reference_mining(root, args.min_pair_frequency, args.min_pair_proportion)
    polars_s = time.perf_counter() - start
    row = {
        "n_boxes": n_boxes,
        "images": train["ImageID"].n_unique(),
        "polars_s": polars_s,
        "candidates": ref_pairs.height,
        "label_pairs": ref_stats.height,
        "accepted": int(ref_stats["accepted"].sum()),
        "same_object": int(ref_stats["same_object"].sum()),
    }
    if args.reference_only:
        return row
    row["beam_s"] = run_pipeline(root, out, args)
    row["beam_own_s"] = run_json_seconds(out)
    row["boxes_per_s"] = n_boxes / row["beam_s"]
    row["ratio"] = row["beam_s"] / polars_s
    row["problems"] = compare(ref_pairs, ref_stats, out)
    return row


def report(rows: list[dict]) -> list[str]:
    """Prints the table, growth and verdicts; returns the verdict lines."""
    beam = "beam_s" in rows[0]
    print(f"{'N':>9} {'images':>8} {'polars s':>9} {'beam s':>8} {'beam own':>9} "
          f"{'boxes/s':>9} {'ratio':>6} {'candidates':>10} {'accepted':>8}")  # fmt: skip
    for r in rows:
        own = r.get("beam_own_s")
        print(
            f"{r['n_boxes']:>9,} {r['images']:>8,} {r['polars_s']:>9.2f} "
            + (
                f"{r['beam_s']:>8.2f} {own if own is None else f'{own:.2f}':>9} "
                f"{r['boxes_per_s']:>9,.0f} {r['ratio']:>6.2f} "
                if beam
                else f"{'-':>8} {'-':>9} {'-':>9} {'-':>6} "
            )
            + f"{r['candidates']:>10,} {r['accepted']:>8,}"
        )
    if not beam:
        return []
    for a, b in zip(rows, rows[1:], strict=False):
        n_ratio, t_ratio = b["n_boxes"] / a["n_boxes"], b["beam_s"] / a["beam_s"]
        # Marginal rate: the extra boxes over the extra time, free of the fixed start-up cost.
        marginal = (b["n_boxes"] - a["n_boxes"]) / max(b["beam_s"] - a["beam_s"], 1e-9)
        print(f"growth {a['n_boxes']:,} -> {b['n_boxes']:,}: N x{n_ratio:.2f}, beam time "
              f"x{t_ratio:.2f}, polars time x{b['polars_s'] / a['polars_s']:.2f}, "
              f"beam marginal {marginal:,.0f} boxes/s")  # fmt: skip
    last, first = rows[-1], rows[0]
    at = f"at {last['n_boxes']:,} boxes"
    verdicts = [
        f"{'PASS' if last['ratio'] <= 3 else 'FAIL'} {at}: Beam within 3x of polars "
        f"({last['ratio']:.2f}x)",
        f"{'PASS' if last['boxes_per_s'] >= 100_000 else 'FAIL'} {at}: >= 100,000 boxes/s "
        f"({last['boxes_per_s']:,.0f})",
    ]
    if len(rows) > 1:
        # Exponent b in time ~ N^b; a fixed start-up cost pulls it below 1, so <= 1.15 is linear.
        n_growth = math.log(last["n_boxes"] / first["n_boxes"])
        b = math.log(last["beam_s"] / first["beam_s"]) / n_growth
        verdicts.append(f"{'PASS' if b <= 1.15 else 'FAIL'} linear growth in N (time ~ N^{b:.2f})")
    for line in verdicts:
        print(line)
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,300000,1000000", help="comma list of N")
    parser.add_argument("--quick", action="store_true", help="one tiny run (N=3000)")
    parser.add_argument("--min_pair_frequency", type=int, default=20)
    parser.add_argument("--min_pair_proportion", type=float, default=0.05)
    parser.add_argument("--local_workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference_only", action="store_true", help="skip the Beam run")
    parser.add_argument("--json", type=Path, default=REPO / "bench_out" / "bench_mining.json")
    args = parser.parse_args()
    pl.Config.set_tbl_cols(-1)  # mismatch examples show every column
    pl.Config.set_tbl_width_chars(160)
    sizes = [3000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_mining_") as work:
        for n_boxes in sizes:
            rows.append(measure(n_boxes, args, Path(work)))
            for problem in rows[-1].get("problems", []):
                print(f"MISMATCH at N={n_boxes:,}: {problem}")
    verdicts = report(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "verdicts": verdicts}, indent=2))
    print(f"wrote {args.json}")
    return 1 if any(row.get("problems") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
