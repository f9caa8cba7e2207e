"""Shard-stage benchmark: render_crops + build_tar against a naive and a bare cropping loop.

The 14 real photos in shared/data/openimages-photos, replicated under distinct IDs, with their
own boxes and with real Open Images box layouts; prints per-core rates, ratios and a projection.
"""

import argparse
import csv
import io
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, features

from hierdata.crops import CropRequest, crop_rectangles, draft_scale, render_crops
from hierdata.shards import build_tar, encode_sample, shard_count, shard_of
from schemas.sample import box_key, cross_key

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PHOTOS = DATA / "openimages-photos"
V3_VALIDATION = DATA / "openimages-v3-head" / "validation-annotations-bbox.csv"
CROP_SIZE = 256  # DESIGN defaults
QUALITY = 90
MIN_BOX_AREA = 0.01
SAMPLES_PER_SHARD = 1000
# Open Images (DESIGN): the full dataset the projection is for.
OI_IMAGES = 1_900_000
OI_BOXES = 14_600_000
# Cross-image crops per image = distinct labels per image x --cross_image_samples (1): 2.8 and
# 3.2 distinct labels per image in the V3 validation/test heads in shared/data.
CROSS_PER_IMAGE = 3.0

Photo = tuple[str, bytes, list[tuple[float, float, float, float]]]  # id, JPEG, boxes


def _read_boxes(path: Path, min_box_area: float) -> dict[str, list]:
    """(xmin, xmax, ymin, ymax) boxes per ImageID of an Open Images CSV, in file order."""
    boxes: dict[str, list] = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            box = tuple(float(row[c]) for c in ("XMin", "XMax", "YMin", "YMax"))
            kept = boxes.setdefault(row["ImageID"], [])
            # As the pipeline does: boxes under min_box_area of the image are not cropped.
            if (box[1] - box[0]) * (box[3] - box[2]) >= min_box_area:
                kept.append(box)
    return boxes


def photo_scenarios(replicas: int) -> dict[str, list[Photo]]:
    """The photos `replicas` times under new IDs, with (a) their own boxes (all of them) and
    (b) the box layouts of the V3 validation head's images (real Open Images geometry, boxes
    kept at min_box_area 0.01 as the pipeline does), assigned in turn."""
    own = _read_boxes(PHOTOS / "boxes.csv", 0.0)
    data = {image_id: (PHOTOS / "images" / f"{image_id}.jpg").read_bytes() for image_id in own}
    layouts = [b for b in _read_boxes(V3_VALIDATION, MIN_BOX_AREA).values() if b][:-1]
    names = sorted(own)
    ids = [(f"{name}-r{r:03d}", name) for r in range(replicas) for name in names]
    return {
        "photo_boxes": [(new, data[name], own[name]) for new, name in ids],
        "oi_v3_layouts": [
            (new, data[name], layouts[i % len(layouts)]) for i, (new, name) in enumerate(ids)
        ],
    }


def _metadata(image_id: str, size: tuple[int, int], boxes: list, donor_id: str) -> dict:
    label = "/m/0ch_cf"
    return {
        "image_id": image_id,
        "split": "bench",
        "width": size[0],
        "height": size[1],
        "labels": [label],
        "boxes": [
            {
                "key": box_key(i),
                "box_id": i,
                "label": label,
                "xmin": b[0],
                "xmax": b[1],
                "ymin": b[2],
                "ymax": b[3],
                "is_group_of": 0,
                "tree_parent": "img",
            }
            for i, b in enumerate(boxes)
        ],
        "cross": [
            {"key": cross_key(0), "label": label, "source_image_id": donor_id, "source_box_id": 0}
        ],
        "pairs": [
            {"parent": "img", "child": box_key(i), "kind": "image_box"} for i in range(len(boxes))
        ]
        + [{"parent": "img", "child": cross_key(0), "kind": "cross_image"}],
    }


def project(photos: list[Photo], allow_draft: bool = True) -> dict:
    """The shard stage: render_crops per image, cross-image crops copied from another image's
    box crop (never re-rendered), encode_sample, shard_of, build_tar per shard."""
    rendered = []
    for image_id, data, boxes in photos:
        requests = [CropRequest(box_key(i), *box) for i, box in enumerate(boxes)]
        crops, size = render_crops(data, requests, CROP_SIZE, QUALITY, allow_draft)
        rendered.append((image_id, crops, boxes, size))
    donors = [(image_id, crops) for image_id, crops, boxes, _ in rendered if boxes]
    samples = []
    for index, (image_id, crops, boxes, size) in enumerate(rendered):
        donor_id, donor_crops = donors[(index + 1) % len(donors)]
        entries = {**crops, cross_key(0): donor_crops[box_key(0)]}
        metadata = _metadata(image_id, size, boxes, donor_id)
        samples.append((image_id, encode_sample(image_id, entries, metadata)))
    shard_ids = shard_of([key for key, _ in samples], shard_count(len(samples), SAMPLES_PER_SHARD))
    tars = [
        build_tar([s for s, i in zip(samples, shard_ids, strict=True) if i == shard])
        for shard in np.unique(shard_ids)
    ]
    return {"samples": samples, "tars": tars}


def project_no_draft(photos: list[Photo]) -> dict:
    return project(photos, allow_draft=False)


def _thumbnail_jpeg(image: Image.Image) -> bytes:
    image.thumbnail((CROP_SIZE, CROP_SIZE))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=QUALITY)
    return buffer.getvalue()


def _rectangles(image: Image.Image, boxes: list) -> np.ndarray:
    """(1 + N, 4) pixel rectangles: the whole image, then each box."""
    box_rects = crop_rectangles(np.array(boxes).reshape(-1, 4), *image.size)
    return np.concatenate([[[0, 0, *image.size]], box_rects])


def _decode_rgb(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()  # full resolution: no draft
    return image if image.mode == "RGB" else image.convert("RGB")


def naive(photos: list[Photo]) -> None:
    """Decode the source again for every output (the whole image and each box)."""
    for _, data, boxes in photos:
        for rectangle in _rectangles(Image.open(io.BytesIO(data)), boxes):
            _thumbnail_jpeg(_decode_rgb(data).crop(tuple(int(v) for v in rectangle)))


def bare(photos: list[Photo]) -> None:
    """Decode once at full resolution (no draft), then crop, thumbnail and encode each output."""
    for _, data, boxes in photos:
        image = _decode_rgb(data)
        for rectangle in _rectangles(image, boxes):
            _thumbnail_jpeg(image.crop(tuple(int(v) for v in rectangle)))


def decode_only(photos: list[Photo]) -> None:
    """Full-resolution decode alone: splits render time into per-image and per-crop parts."""
    for _, data, _ in photos:
        Image.open(io.BytesIO(data)).load()


def _draft_scale(data: bytes, boxes: list) -> int:
    image = Image.open(io.BytesIO(data))
    return draft_scale(*image.size, _rectangles(image, boxes)[1:], CROP_SIZE)


def _shard_bytes(photos: list[Photo]) -> dict[str, float]:
    """Mean bytes per sample of the project's shards, and of their parts."""
    output = project(photos)
    entries = [sample for _, sample in output["samples"]]
    per_sample = sum(len(tar) for tar in output["tars"]) / len(entries)
    jpeg = statistics.mean(sum(len(v) for k, v in s.items() if k.endswith(".jpg")) for s in entries)
    json_bytes = statistics.mean(len(s["json"]) for s in entries)
    box_crops = [len(v) for s in entries for k, v in s.items() if k[0] == "b"]
    return {
        "per_sample": per_sample,
        "img_jpeg": statistics.mean(len(s["img.jpg"]) for s in entries),
        "box_jpeg": statistics.mean(box_crops) if box_crops else 0.0,
        "json": json_bytes,
        "tar_overhead": per_sample - jpeg - json_bytes,  # tar headers and padding
    }


def run_scenario(photos: list[Photo], rounds: int, naive_fraction: float) -> dict:
    """Median seconds per sample of each variant over interleaved rounds, ratios, sizes."""
    scales = [_draft_scale(data, boxes) for _, data, boxes in photos]
    drafted = [photo for photo, scale in zip(photos, scales, strict=True) if scale > 1]
    naive_photos = photos[: max(1, int(len(photos) * naive_fraction))]
    variants: dict[str, tuple[Callable, list[Photo]]] = {
        "project": (project, photos),
        "project_no_draft": (project_no_draft, photos),
        "bare": (bare, photos),
        "decode_only": (decode_only, photos),
        "naive": (naive, naive_photos),
        "project@naive": (project, naive_photos),  # the same samples, for the ratio
    }
    if drafted:
        variants["project@drafted"] = (project, drafted)
        variants["bare@drafted"] = (bare, drafted)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):  # interleaved, so machine noise hits every variant alike
        for name, (function, subset) in variants.items():
            start = time.perf_counter()
            function(subset)
            seconds[name].append((time.perf_counter() - start) / len(subset))
    per_sample = {name: statistics.median(values) for name, values in seconds.items()}
    crops = {
        name: statistics.mean(1 + len(b) for _, _, b in subset)  # img + boxes
        for name, (_, subset) in variants.items()
    }
    decode_s = per_sample["decode_only"]
    ratios = {
        "project_vs_bare": per_sample["bare"] / per_sample["project"],
        "project_vs_naive": per_sample["naive"] / per_sample["project@naive"],
        "draft_gain": per_sample["project_no_draft"] / per_sample["project"],
    }
    if drafted:
        ratios["project_vs_bare_on_drafted"] = (
            per_sample["bare@drafted"] / per_sample["project@drafted"]
        )
    return {
        "samples": {name: len(subset) for name, (_, subset) in variants.items()},
        "crops_per_sample": crops,
        "drafted_fraction": len(drafted) / len(photos),
        "seconds_per_sample": per_sample,
        "samples_per_s_per_core": {name: 1 / t for name, t in per_sample.items()},
        "crops_per_s_per_core": {name: crops[name] / t for name, t in per_sample.items()},
        "ratios": ratios,
        "bytes": _shard_bytes(photos),
        "decode_s_per_image": decode_s,
        # Render cost beyond the decode, per output, at full resolution (no draft).
        "render_s_per_crop": max(per_sample["project_no_draft"] - decode_s, 0.0) / crops["project"],
        "project_s_per_sample": per_sample["project"],
    }


def projection(scenario: dict) -> dict:
    """Open Images totals at a scenario's measured costs and sizes."""
    sizes = scenario["bytes"]
    renders_per_image = 1 + OI_BOXES / OI_IMAGES  # the whole image + each box
    full_decode = scenario["decode_s_per_image"] + renders_per_image * scenario["render_s_per_crop"]
    return {
        "images": OI_IMAGES,
        "boxes": OI_BOXES,
        "cross_crops_per_image": CROSS_PER_IMAGE,
        "shard_bytes_from_bytes_per_sample": sizes["per_sample"] * OI_IMAGES,
        "shard_bytes_from_per_crop_sizes": (
            OI_IMAGES * (sizes["img_jpeg"] + sizes["json"] + sizes["tar_overhead"])
            + (OI_BOXES + CROSS_PER_IMAGE * OI_IMAGES) * sizes["box_jpeg"]
        ),
        "vcpu_hours_no_draft": OI_IMAGES * full_decode / 3600,
        "vcpu_hours_with_measured_draft_gain": OI_IMAGES
        * full_decode
        / scenario["ratios"]["draft_gain"]
        / 3600,
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", type=int, default=30, help="copies of each photo")
    parser.add_argument(
        "--naive_fraction",
        type=float,
        default=0.1,
        help="share of the samples the (slow) naive loop runs on",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; median kept")
    parser.add_argument("--out", type=Path, default=REPO / "bench_out" / "bench_shards.json")
    args = parser.parse_args()
    if not PHOTOS.is_dir() or not V3_VALIDATION.is_file():
        raise SystemExit(f"fixtures not found under {DATA} (../shared/data)")
    scenarios = {
        name: run_scenario(photos, args.rounds, args.naive_fraction)
        for name, photos in photo_scenarios(args.replicas).items()
    }
    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "crop_size": CROP_SIZE,
        "jpeg_quality": QUALITY,
        "rounds": args.rounds,
        "scenarios": scenarios,
        "projection_oi_v3_layouts": projection(scenarios["oi_v3_layouts"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


def print_table(result: dict) -> None:
    print(
        f"crop_size {result['crop_size']}, q{result['jpeg_quality']}, Pillow {result['pillow']}, "
        f"libjpeg-turbo {result['libjpeg_turbo']}, {result['cpu']}, "
        f"median of {result['rounds']} interleaved rounds, one process"
    )
    for scenario_name, scenario in result["scenarios"].items():
        print(f"\n{scenario_name}: {scenario['drafted_fraction']:.0%} of samples drafted")
        print(
            f"{'variant':<18}{'samples':>8}{'crops/sample':>13}{'samples/s/core':>15}"
            f"{'crops/s/core':>13}"
        )
        for name, t in scenario["seconds_per_sample"].items():
            print(
                f"{name:<18}{scenario['samples'][name]:8d}"
                f"{scenario['crops_per_sample'][name]:13.1f}{1 / t:15.1f}"
                f"{scenario['crops_per_s_per_core'][name]:13.0f}"
            )
        for name, ratio in scenario["ratios"].items():
            print(f"  {name:<28}{ratio:6.2f}x")
        b = scenario["bytes"]
        print(
            f"  bytes/sample {b['per_sample']:.0f} (img {b['img_jpeg']:.0f}, box crop "
            f"{b['box_jpeg']:.0f}, json {b['json']:.0f}, tar overhead {b['tar_overhead']:.0f})"
        )
        print(
            f"  {scenario['decode_s_per_image'] * 1e3:.2f} ms decode/image + "
            f"{scenario['render_s_per_crop'] * 1e3:.3f} ms/crop at full resolution"
        )
    p = result["projection_oi_v3_layouts"]
    print(
        f"\nOpen Images ({p['images']:,} images, {p['boxes']:,} boxes, "
        f"{p['cross_crops_per_image']:.0f} cross crops/image) at oi_v3_layouts costs:"
    )
    print(
        f"  shards: {p['shard_bytes_from_bytes_per_sample'] / 1e9:.0f} GB at its bytes/sample; "
        f"{p['shard_bytes_from_per_crop_sizes'] / 1e9:.0f} GB from per-crop sizes"
    )
    print(
        f"  render: {p['vcpu_hours_no_draft']:.1f} vCPU-hours without draft, "
        f"{p['vcpu_hours_with_measured_draft_gain']:.1f} with the measured draft gain "
        "(excludes reading images, shuffle and upload)"
    )


if __name__ == "__main__":
    main()
