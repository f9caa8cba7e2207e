"""Crop galleries: for the top accepted label pairs, parent and child crops read from the shards,
so a person can check that "Car ⊃ Wheel" really looks like that. The only reader of shards.
"""

import io as bytes_io
import tarfile
from collections.abc import Callable

import polars as pl
from PIL import Image, ImageDraw

from hierdata import io, outputs, shards
from hierdata.audit.sources import Run
from hierdata.errors import InputError
from schemas.report_layout import gallery_name
from schemas.sample import box_key

TOP_PAIRS = 8
EXAMPLES_PER_PAIR = 3
# Shards are read whole and in order (one sequential stream, not a seek per member, which
# would be one request per tar header on gs://); examples are drawn from this many shards.
MAX_SHARDS = 2
_ROWS_PER_PAIR = 200  # candidate rows per label pair that are hashed to find their shard
_CORNERS = ("xmin", "xmax", "ymin", "ymax")
CHILD_OUTLINE = (230, 40, 40)  # the child's box drawn on the parent crop


def child_within_parent(parent: dict, child: dict) -> tuple[float, float, float, float]:
    """The child box in the parent crop's coordinates, (x0, y0, x1, y1) as fractions of the
    crop's width and height, clipped to [0, 1] (containment lets a child stick out a little).

    Args:
        parent, child: boxes with xmin, xmax, ymin, ymax normalised to the whole image.
    """
    width = max(parent["xmax"] - parent["xmin"], 1e-12)  # an empty box would divide by zero
    height = max(parent["ymax"] - parent["ymin"], 1e-12)

    def clip(value: float) -> float:
        return min(max(value, 0.0), 1.0)

    return (
        clip((child["xmin"] - parent["xmin"]) / width),
        clip((child["ymin"] - parent["ymin"]) / height),
        clip((child["xmax"] - parent["xmin"]) / width),
        clip((child["ymax"] - parent["ymin"]) / height),
    )


def outline_child(parent_jpeg: bytes, within: tuple[float, float, float, float]) -> bytes:
    """The parent crop (JPEG) with the child's box (child_within_parent) drawn on it, as PNG
    (lossless, so the thin outline stays sharp)."""
    with Image.open(bytes_io.BytesIO(parent_jpeg)) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    x0, y0, x1, y1 = within
    line = max(2, round(max(width, height) / 100))
    rectangle = (x0 * (width - 1), y0 * (height - 1), x1 * (width - 1), y1 * (height - 1))
    ImageDraw.Draw(image).rectangle(rectangle, outline=CHILD_OUTLINE, width=line)
    buffer = bytes_io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def shard_sizes(run: Run) -> dict[str, dict[str, int]]:
    """{split: sizes.json} ({shard tar name: samples}) for the splits that have shards."""
    found = {}
    for split in run.options.get("splits", []):
        try:
            found[split] = outputs.read_sizes(run.layout.shards_dir(split))
        except (InputError, OSError):
            continue  # a --skip_images run, or a split whose shards were not written
    return found


def _shard_total(run: Run, split: str, sizes: dict[str, int]) -> int:
    """The shard count the pipeline hashed image ids into (shards.shard_of's modulus).

    As WriteShards computed it, from the samples it wrote (run.json "shards"; older runs: the
    planned samples): sizes.json lists only the shards that were written, and a shard that
    drew no sample is not.
    """
    written = run.record.get("shards", {}).get(split, {}).get("samples")
    planned = run.record.get("counts", {}).get("samples_planned", {}).get(split)
    samples = written if written is not None else planned
    per_shard = run.options.get("samples_per_shard")
    if samples is None or not per_shard:
        return len(sizes)
    return shards.shard_count(int(samples), int(per_shard))


def _examples(run: Run, top: pl.DataFrame, n_shards: dict[str, int]) -> pl.DataFrame:
    """box_box training pairs of the top label pairs, with the shard that holds their image."""
    rows = (
        run.scan("pairs")
        .filter((pl.col("kind") == "box_box") & pl.col("split").is_in(list(n_shards)))
        .join(top.lazy().select("parent_label", "child_label"), on=["parent_label", "child_label"])
        .select("split", "image_id", "parent_label", "child_label", "parent_box", "child_box")
        .sort("parent_label", "child_label", "split", "image_id", "parent_box", "child_box")
        .group_by("parent_label", "child_label", maintain_order=True)
        .head(_ROWS_PER_PAIR)
        .collect()
    )
    # Each box's corners (normalised to its image), to draw the child on the parent crop.
    boxes = (
        run.scan("boxes")
        .select("split", "image_id", "box_id", *_CORNERS)
        .join(rows.lazy().select("split", "image_id").unique(), on=["split", "image_id"])
        .collect()
    )
    for role in ("parent", "child"):
        renamed = boxes.rename({"box_id": f"{role}_box", **{c: f"{role}_{c}" for c in _CORNERS}})
        rows = rows.join(
            renamed.with_columns(pl.col(f"{role}_box").cast(rows.schema[f"{role}_box"])),
            on=["split", "image_id", f"{role}_box"],
            how="left",
        )
    parts = [rows.clear().with_columns(shard=pl.lit(0, pl.Int64))]
    for split, count in n_shards.items():
        subset = rows.filter(pl.col("split") == split)
        shard = shards.shard_of(subset["image_id"].to_list(), count)
        parts.append(subset.with_columns(shard=pl.Series(shard, dtype=pl.Int64)))
    return pl.concat(parts)


def _member(image_id: str, box_id: int) -> str:
    """The tar member of a box crop in its image's sample: {image_id}.bNNN.jpg."""
    return f"{image_id}.{box_key(box_id)}.jpg"


def _choose_shards(rows: pl.DataFrame) -> list[tuple[str, int]]:
    """The MAX_SHARDS (split, shard) that cover the most label pairs, then the most rows."""
    ranked = (
        rows.group_by("split", "shard")
        .agg(pairs=pl.struct("parent_label", "child_label").n_unique(), rows=pl.len())
        .sort(["pairs", "rows", "split", "shard"], descending=[True, True, False, False])
        .head(MAX_SHARDS)
    )
    return list(ranked.select("split", "shard").iter_rows())


def _read_members(url: str, wanted: set[str]) -> dict[str, bytes]:
    """The named tar members of one shard, read in one sequential pass that stops early
    (samples are sorted by key inside a shard, so nothing wanted follows the last key)."""
    found: dict[str, bytes] = {}
    last_key = max(name.split(".", 1)[0] for name in wanted)
    fs, path = io.filesystem(url)
    with fs.open(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r|") as tar:
        for member in tar:
            if member.name in wanted:
                extracted = tar.extractfile(member)
                if extracted is not None:
                    found[member.name] = extracted.read()
            if len(found) == len(wanted) or member.name.split(".", 1)[0] > last_key:
                break
    return found


def _top_pairs(label_pairs: pl.DataFrame) -> pl.DataFrame:
    """The TOP_PAIRS most frequent accepted label pairs (ties by label ids)."""
    return (
        label_pairs.filter(pl.col("accepted"))
        .sort(["frequency", "parent_label", "child_label"], descending=[True, False, False])
        .head(TOP_PAIRS)
    )


def _pick(rows: pl.DataFrame, chosen: list[tuple[str, int]]) -> pl.DataFrame:
    """Up to EXAMPLES_PER_PAIR rows per label pair from the chosen shards, one per image."""
    picked = rows.join(
        pl.DataFrame(chosen, schema={"split": pl.String, "shard": pl.Int64}, orient="row"),
        on=["split", "shard"],
    )
    return (
        picked.unique(
            ["parent_label", "child_label", "split", "image_id"], keep="first", maintain_order=True
        )
        .group_by("parent_label", "child_label", maintain_order=True)
        .head(EXAMPLES_PER_PAIR)
    )


def _read_crops(
    run: Run, picked: pl.DataFrame, chosen: list[tuple[str, int]]
) -> tuple[list[str], dict[str, bytes]]:
    """(tar URLs read, {tar member: JPEG}) for the parent and child crops of the picked rows."""
    members: dict[str, bytes] = {}
    urls = []
    for split, shard in chosen:
        subset = picked.filter((pl.col("split") == split) & (pl.col("shard") == shard))
        wanted = {
            _member(image_id, box)
            for image_id, parent, child in subset.select(
                "image_id", "parent_box", "child_box"
            ).iter_rows()
            for box in (parent, child)
        }
        if wanted:
            url = run.layout.shard_tar(split, shard)
            urls.append(url)
            members.update(_read_members(url, wanted))
    return urls, members


def _examples_of_pair(
    mine: pl.DataFrame, members: dict[str, bytes], write: Callable[[str, bytes], None]
) -> list[dict]:
    """Write the crops of one label pair's picked rows; the gallery entries of those written."""
    examples = []
    for row in mine.iter_rows(named=True):
        names = [_member(row["image_id"], row[k]) for k in ("parent_box", "child_box")]
        if not all(name in members for name in names):
            continue  # the image failed to decode: it is in the image rejects
        sources = []
        for name in names:
            relative = gallery_name(row["split"], name)
            write(relative, members[name])
            sources.append(relative)
        # The parent once more, with the child's box drawn where it lies in the parent.
        parent, child = (
            {corner: row[f"{role}_{corner}"] for corner in _CORNERS} for role in ("parent", "child")
        )
        outlined = None
        if None not in (*parent.values(), *child.values()):
            outlined = gallery_name(row["split"], names[0].replace(".jpg", ".outlined.png"))
            write(outlined, outline_child(members[names[0]], child_within_parent(parent, child)))
        examples.append(
            {
                "split": row["split"],
                "image_id": row["image_id"],
                "parent_box": row["parent_box"],
                "child_box": row["child_box"],
                "parent_src": sources[0],
                "child_src": sources[1],
                "outlined_src": outlined,
            }
        )
    return examples


def build(
    run: Run,
    label_pairs: pl.DataFrame,
    sizes: dict[str, dict[str, int]],
    write: Callable[[str, bytes], None],
) -> dict:
    """Pick examples of the TOP_PAIRS most frequent accepted label pairs and write their crops.

    Args:
        run: the opened run.
        label_pairs: its label_pairs table (polars).
        sizes: shard_sizes(run).
        write: callable(relative path, bytes) that stores a report file.
    Returns:
        {"shards_read": [tar URLs], "pairs": [{"parent_label", "child_label", "parent_name",
        "child_name", "frequency", "examples": [{"split", "image_id", "parent_box",
        "child_box", "parent_src", "child_src", "outlined_src" (the parent crop with the
        child's box drawn, None when the boxes table lacks them)}]}], "note": why a gallery is
        empty or None}.
    """
    n_shards = {split: _shard_total(run, split, per_shard) for split, per_shard in sizes.items()}
    if not n_shards:
        return {
            "shards_read": [],
            "pairs": [],
            "note": "no shards in this output (a --skip_images run): no crops to show",
        }
    top = _top_pairs(label_pairs)
    if top.height == 0:
        return {"shards_read": [], "pairs": [], "note": "no accepted label pairs: no crops"}
    rows = _examples(run, top, n_shards)
    chosen = _choose_shards(rows) if rows.height else []
    picked = _pick(rows, chosen)
    urls, members = _read_crops(run, picked, chosen)
    gallery = []
    for pair in top.iter_rows(named=True):
        mine = picked.filter(
            (pl.col("parent_label") == pair["parent_label"])
            & (pl.col("child_label") == pair["child_label"])
        )
        gallery.append(
            {
                "parent_label": pair["parent_label"],
                "child_label": pair["child_label"],
                "parent_name": run.name(pair["parent_label"]),
                "child_name": run.name(pair["child_label"]),
                "frequency": pair["frequency"],
                "examples": _examples_of_pair(mine, members, write),
            }
        )
    return {"shards_read": urls, "pairs": gallery, "note": None}
