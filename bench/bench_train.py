"""Training benchmark: tiny-encoder CPU steps/s; encoder passes per pair (unique crops vs members);
the loss forms' cost (per_pair, the paper's eq. 8, against supcon_out) on their own.

Passes are counted from batch plans (no decoding) on demo shards and on Open Images-like boxes
mined by the real pipeline; with a CUDA device it also times ViT-B/16 in bf16 (pairs/s, MFU).

    python bench/bench_train.py [--demo DIR] [--oi_boxes 150000] [--out result.json]
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import polars as pl
import torch
from oi_like import write_dataset

from hierdata.outputs import read_table
from schemas.sample import box_key
from training.data import expand_shards, read_samples
from training.encoders import build_encoder
from training.geometry import exp_map0
from training.losses import LOSSES, EntailmentLoss
from training.pairs import SamplePairs, pack_pairs, plan_batch
from training.pairs import sample_pairs as expand_sample
from training.step import EntailmentModel
from training.train import train
from training.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
BATCH_PAIRS = (64, 256, 1024)
# ViT-B/16 at 224 px: 12 layers x (197 tokens x (4 d^2 + 2 d 3072) + 2 x 197^2 d) multiply-adds
# with d = 768, plus the 16x16 patch embedding: 17.56 G MACs, so 35.1 GFLOP forward and 3x that
# for forward + backward.
VIT_B16_TRAIN_FLOP = 3 * 2 * 17.56e9
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}  # dense


def passes_per_pair(samples: list[SamplePairs], batch_pairs: int, seed: int = 0) -> dict:
    """Encoder passes for one shuffled epoch of ``samples`` packed into batches of pairs.

    Returns pairs, and passes when encoding every pair member (2 per pair), each unique
    (carrying image, key) crop of a batch, and each unique crop with cross-image crops matched
    to their source box (training.pairs' crop identity).
    """
    order = list(samples)
    random.Random(seed).shuffle(order)
    pairs = by_key = canonical = 0
    for chunks in pack_pairs(order, batch_pairs):
        plan = plan_batch(chunks)
        pairs += plan.parent_index.size
        canonical += len(plan.crops)
        by_key += len({
            (sample.image_id, sample.entries[crop])
            for sample, start, stop in chunks for pair in sample.pairs[start:stop] for crop in pair
        })  # fmt: skip
    return {"pairs": pairs, "pair_members": 2 * pairs, "unique_keys": by_key,
            "unique_crops": canonical}  # fmt: skip


def demo_samples(demo: Path) -> tuple[list[SamplePairs], str]:
    """Metadata-only samples of the demo train shards (the pipeline's default run if absent)."""
    shards = demo / "shards" / "train"
    if not (shards / "sizes.json").exists():
        command = [sys.executable, "-m", "pipelines.build_hier_openimages", "--output", str(demo)]
        subprocess.run(command, check=True, cwd=REPO)
    names = sorted(json.loads((shards / "sizes.json").read_text()))
    urls = [str(shards / name) for name in names]
    spec = str(shards / f"train-{{000000..{len(names) - 1:06d}}}.tar")
    assert expand_shards(spec) == urls
    return [replace(sample, jpegs=None) for sample in read_samples(urls)], spec


def oi_like_samples(root: Path, n_boxes: int) -> tuple[list[SamplePairs], dict]:
    """Open Images-like boxes (bench/oi_like.py) mined by the pipeline, as sample metadata."""
    write_dataset(root / "input", n_boxes)
    command = [sys.executable, "-m", "pipelines.build_hier_openimages", "--input",
               str(root / "input"), "--output", str(root / "out"), "--skip_images",
               "--min_pair_frequency", "20"]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO, capture_output=True)
    out = str(root / "out")
    boxes = pl.from_arrow(read_table(out, "boxes"))
    kept = boxes.filter(pl.col("kept")).group_by("image_id").agg("box_id", "label")
    pairs = pl.from_arrow(read_table(out, "pairs")).group_by("image_id").agg(
        "kind", "parent_box", "child_box")  # fmt: skip
    cross = pl.from_arrow(read_table(out, "cross_pairs")).group_by("image_id").agg(
        "key", "label", "source_image_id", "source_box_id")  # fmt: skip
    images = kept.join(pairs, on="image_id", how="left").join(
        cross, on="image_id", how="left", suffix="_cross")  # fmt: skip
    samples = []
    for row in images.iter_rows(named=True):
        cross_rows = zip(*(row[c] or [] for c in ("key", "label_cross", "source_image_id",
                                                   "source_box_id")), strict=True)  # fmt: skip
        metadata = {
            "image_id": row["image_id"], "labels": sorted(set(row["label"])),
            "boxes": [{"key": box_key(b), "label": label}
                      for b, label in zip(row["box_id"], row["label"], strict=True)],
            "cross": [{"key": k, "label": label, "source_image_id": s, "source_box_id": b}
                      for k, label, s, b in cross_rows],
        }  # fmt: skip
        own = zip(row["kind"] or [], row["parent_box"] or [], row["child_box"] or [], strict=True)
        metadata["pairs"] = [
            {"parent": "img" if parent < 0 else box_key(parent), "child": box_key(child)}
            for _, parent, child in own
        ] + [{"parent": "img", "child": item["key"]} for item in metadata["cross"]]
        samples.append(expand_sample(metadata))
    per_image = boxes.group_by("image_id").agg(
        pl.len().alias("boxes"), pl.col("kept").sum().alias("kept"))  # fmt: skip
    stats = {
        "images": per_image.height,
        "boxes_per_image_mean": per_image["boxes"].mean(),
        "boxes_per_image_p99": per_image["boxes"].quantile(0.99),
        "boxes_per_image_max": per_image["boxes"].max(),
        "kept_boxes_per_image_mean": per_image["kept"].mean(),
        "pairs_per_image_mean": statistics.mean(len(s.pairs) for s in samples),
    }
    return samples, stats


def cpu_training_rate(spec: str, encoder: str, batch_pairs: int, steps: int = 30) -> dict:
    """The real loop (training.train) on CPU: median step time after 5 warm-up steps."""
    with tempfile.TemporaryDirectory() as output:
        config = TrainConfig(shards=spec, output=output, encoder=encoder,
                             batch_pairs=batch_pairs, num_workers=1, max_steps=steps,
                             warmup_steps=5, lr=1e-4, log_every=1, checkpoint_every=10**9,
                             device="cpu")  # fmt: skip
        train(config)
        lines = (Path(output) / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines][5:]
    seconds = sorted(r["seconds"] for r in records)
    median, p10 = statistics.median(seconds), seconds[len(seconds) // 10]
    crops = statistics.mean(r["crops"] for r in records)
    return {"encoder": encoder, "batch_pairs": batch_pairs, "steps_per_s": 1 / median,
            "steps_per_s_p10": 1 / p10, "pairs_per_s": batch_pairs / median,
            "crops_per_step": crops}  # fmt: skip


def model_step_rate(encoder_name: str, batch_pairs: int, pairs_per_pass: float,
                    device: torch.device, steps: int = 20) -> dict:  # fmt: skip
    """Encoder + loss + AdamW on device-resident random crops (no data loading): the compute
    bound. N = 2P / pairs_per_pass crops, P random pairs among them; bf16 autocast on CUDA."""
    torch.manual_seed(0)
    encoder = build_encoder(encoder_name)
    model = EntailmentModel(encoder, EntailmentLoss()).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    n_crops = max(2, round(2 * batch_pairs / pairs_per_pass))
    size = encoder.image_size
    pixels = torch.randn(n_crops, 3, size, size, device=device)
    parent = torch.randint(0, n_crops, (batch_pairs,), device=device)
    child = (parent + torch.randint(1, n_crops, (batch_pairs,), device=device)) % n_crops
    times = []
    for _ in range(steps + 5):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(pixels, parent, child, None)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    step = statistics.median(times[5:])
    return {"encoder": encoder_name, "batch_pairs": batch_pairs, "crops": n_crops,
            "pairs_per_s": batch_pairs / step, "crops_per_s": n_crops / step}  # fmt: skip


def _peak_tflops(name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def _cell(value) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _table(rows: Iterable[dict], columns: list[str]) -> str:
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def bench_passes(demo_dir: Path, oi_boxes: int, result: dict) -> str:
    """Fill result["oi_like"] and result["passes"], print the table; returns the demo spec."""
    demo, spec = demo_samples(demo_dir)
    with tempfile.TemporaryDirectory() as root:
        oi_like, result["oi_like"] = oi_like_samples(Path(root), oi_boxes)
    passes = []
    for name, samples in (("demo", demo), ("oi-like", oi_like)):
        for batch_pairs in BATCH_PAIRS:
            row = {
                "data": name,
                "batch_pairs": batch_pairs,
                **passes_per_pair(samples, batch_pairs),
            }
            row["fewer_than_members"] = row["pair_members"] / row["unique_crops"]
            row["fewer_than_keys"] = row["unique_keys"] / row["unique_crops"]
            passes.append(row)
    result["passes"] = passes
    print("Open Images-like set:", json.dumps(result["oi_like"]))
    print("\nEncoder passes per epoch (one shuffled epoch, batches of pairs):")
    print(_table(passes, ["data", "batch_pairs", "pairs", "pair_members", "unique_keys",
                          "unique_crops", "fewer_than_members", "fewer_than_keys"]))  # fmt: skip
    worst = min(row["fewer_than_members"] for row in passes)
    verdict = "meets" if worst >= 1.8 else "MISSES"
    print(f"one pass per unique crop: >= {worst:.2f}x fewer passes than one per pair member "
          f"({verdict} the 1.8x bound)")  # fmt: skip
    return spec


def loss_form_rate(n_crops: int, n_pairs: int, repeats: int = 20) -> list[dict]:
    """Forward + backward of the Lorentz loss alone on (n_crops, 128) points with n_pairs random
    pairs, per loss form: median milliseconds (CPU)."""
    generator = torch.Generator().manual_seed(0)
    tangents = torch.randn(n_crops, 128, generator=generator).requires_grad_()
    parent = torch.randint(0, n_crops, (n_pairs,), generator=generator)
    child = (parent + torch.randint(1, n_crops, (n_pairs,), generator=generator)) % n_crops
    rows = []
    for form in LOSSES:
        loss = EntailmentLoss("lorentz", form=form)
        times = []
        for _ in range(repeats + 3):
            started = time.perf_counter()
            loss(exp_map0(0.1 * tangents, 1.0), parent, child, curv=1.0)["loss"].backward()
            times.append(time.perf_counter() - started)
        rows.append({"form": form, "crops": n_crops, "pairs": n_pairs,
                     "ms": 1000 * statistics.median(times[3:])})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--demo",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bench_demo",
        help="demo pipeline output (built there when it has no shards)",
    )
    parser.add_argument("--oi_boxes", type=int, default=150_000)
    parser.add_argument("--cpu_steps", type=int, default=30)
    parser.add_argument("--parts", default="passes,cpu,loss,gpu", help="comma list of parts")
    parser.add_argument("--peak_tflops", type=float, default=None, help="GPU bf16 dense peak")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    result = {"date": datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} "
                         f"torch threads, load average {os.getloadavg()[0]:.1f}"}  # fmt: skip
    print(result["machine"])

    oi_ratio = 1.9  # measured on the oi-like set (batch_pairs 64-1024: 1.90-1.98)
    if "passes" in parts:
        bench_passes(args.demo, args.oi_boxes, result)
        rows = [r["fewer_than_members"] for r in result["passes"] if r["data"] == "oi-like"]
        oi_ratio = statistics.mean(rows)
    if "cpu" in parts:
        _, spec = demo_samples(args.demo)
        cpu = [cpu_training_rate(spec, encoder, batch_pairs, args.cpu_steps)
               for encoder in ("tiny-vit", "tiny-resnet") for batch_pairs in (64, 256)]  # fmt: skip
        result["cpu_training"] = cpu
        print(
            "\nCPU training loop (training.train, 1 loader worker, augmentation on; median and "
            "10th-percentile step time after 5 warm-up steps):"
        )
        print(_table(cpu, ["encoder", "batch_pairs", "steps_per_s", "steps_per_s_p10",
                           "pairs_per_s", "crops_per_step"]))  # fmt: skip
    if "loss" in parts:
        forms = [row for n in (128, 512) for row in loss_form_rate(n, 2 * n)]
        result["loss_forms"] = forms
        print("\nLoss alone, forward + backward on CPU (Lorentz angles, 2 pairs per crop):")
        print(_table(forms, ["form", "crops", "pairs", "ms"]))
    if "gpu" in parts and torch.cuda.is_available():
        device, name = torch.device("cuda"), torch.cuda.get_device_name()
        peak = _peak_tflops(name, args.peak_tflops)
        gpu = [model_step_rate("clip-vit-b16", p, oi_ratio, device) for p in (256, 512, 1024)]
        for row in gpu:
            row["tflops"] = row["crops_per_s"] * VIT_B16_TRAIN_FLOP / 1e12
            row["mfu"] = row["tflops"] / peak if peak else float("nan")
        result["gpu"] = {"device": name, "peak_tflops": peak, "rows": gpu}
        print(f"\nViT-B/16 bf16 on {name} (model step only, {oi_ratio:.2f} pairs per pass; "
              f"peak {peak} TFLOP/s):")  # fmt: skip
        print(_table(gpu, ["batch_pairs", "crops", "pairs_per_s", "crops_per_s", "tflops", "mfu"]))
    elif "gpu" in parts:
        tiny = model_step_rate("tiny-vit", 256, oi_ratio, torch.device("cpu"))
        result["cpu_model_step"] = tiny
        print(f"\nno CUDA device: ViT-B/16 bf16 skipped; the same model step with tiny-vit on "
              f"CPU: {tiny['pairs_per_s']:.0f} pairs/s")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
