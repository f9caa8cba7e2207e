"""Shard samples: what each image's WebDataset sample holds, planned before any pixel is read.

`plan_samples` turns one image bucket's tables into per-image plans; `finish_sample` adds the
decoded crops (its own and the cross-image ones other images cut for it) and the image size.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from hierdata.crops import CropRequest
from hierdata.shards import encode_sample
from schemas.sample import ROOT_KEY, box_key

_FLAGS = ("is_occluded", "is_truncated", "is_group_of", "is_depiction", "is_inside")
_COORDS = ("xmin", "xmax", "ymin", "ymax")


@dataclass
class SamplePlan:
    """One image's sample before decoding: metadata without size, and the crops it cuts.

    `requests` are the image's own kept boxes (keys bNNN); `deliveries` maps a box key to the
    (target image, xNNN key) pairs that receive that same crop as a cross-image crop, so a
    box is cut and encoded once however many images ask for it.
    """

    split: str
    image_id: str
    metadata: dict
    requests: list[CropRequest]
    deliveries: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def _rows_by_image(table: pa.Table) -> dict[tuple[str, str], list[dict]]:
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in table.to_pylist():
        grouped.setdefault((row["split"], row["image_id"]), []).append(row)
    return grouped


def plan_samples(
    boxes: pa.Table,
    pairs: pa.Table,
    image_trees: pa.Table,
    cross_pairs: pa.Table,
    names: Mapping[str, str] | None = None,
) -> Iterator[SamplePlan]:
    """Per image with kept boxes: its boxes, pairs, tree and cross-image entries.

    Args:
        boxes: schemas.BOXES of whole images (one bucket).
        pairs: schemas.PAIRS training pairs of those images (image_box + accepted box_box).
        image_trees: schemas.IMAGE_TREES of those images.
        cross_pairs: schemas.CROSS_PAIRS whose scene images are those images.
        names: display names of the label ids (class descriptions); a label without one is
            named by its id.
    Yields:
        SamplePlan per image in (split, image_id) order; requests hold only the image's own
        boxes here (add_requests adds what other images ask of it).
    """
    kept = boxes.filter(boxes.column("kept")).sort_by(
        [("split", "ascending"), ("image_id", "ascending"), ("box_id", "ascending")]
    )
    tree_parent = {
        (r["split"], r["image_id"], r["box_id"]): r["parent_box"]
        for r in image_trees.select(["split", "image_id", "box_id", "parent_box"]).to_pylist()
    }
    pairs_of = _rows_by_image(
        pairs.select(["split", "image_id", "kind", "parent_box", "child_box"])
    )
    cross_of = _rows_by_image(cross_pairs)
    names = names or {}
    for (split, image_id), rows in _rows_by_image(kept).items():
        entries = []
        for row in rows:
            parent = tree_parent.get((split, image_id, row["box_id"]), -1)
            entry = {
                "key": box_key(row["box_id"]),
                "box_id": row["box_id"],
                "label": row["label"],
                "name": names.get(row["label"], row["label"]),
                "tree_parent": ROOT_KEY if parent < 0 else box_key(parent),
            }
            entry.update({name: row[name] for name in (*_COORDS, *_FLAGS)})
            entries.append(entry)
        sample_pairs = [
            {
                "parent": ROOT_KEY if p["parent_box"] < 0 else box_key(p["parent_box"]),
                "child": box_key(p["child_box"]),
                "kind": p["kind"],
            }
            for p in pairs_of.get((split, image_id), [])
        ]
        cross = [
            {
                "key": c["key"],
                "label": c["label"],
                "name": names.get(c["label"], c["label"]),
                "source_image_id": c["source_image_id"],
                "source_box_id": c["source_box_id"],
            }
            for c in cross_of.get((split, image_id), [])
        ]
        sample_pairs += [
            {"parent": ROOT_KEY, "child": c["key"], "kind": "cross_image"} for c in cross
        ]
        labels = sorted({row["label"] for row in rows})
        metadata = {
            "image_id": image_id,
            "split": split,
            "labels": labels,
            "label_names": [names.get(label, label) for label in labels],
            "boxes": entries,
            "cross": cross,
            "pairs": sample_pairs,
        }
        requests = [CropRequest(e["key"], *(e[name] for name in _COORDS)) for e in entries]
        yield SamplePlan(split, image_id, metadata, requests)


def crop_requests_by_source(cross_pairs: pa.Table) -> Iterator[tuple[tuple[str, str], tuple]]:
    """((split, source image), (source box, target image, xNNN key)) per cross-image pair."""
    columns = [
        cross_pairs.column(name).to_pylist()
        for name in ("split", "source_image_id", "source_box_id", "image_id", "key")
    ]
    for split, source, box_id, target, key in zip(*columns, strict=True):
        yield (split, source), (box_id, target, key)


def add_requests(plan: SamplePlan, requests: list[tuple[int, str, str]]) -> None:
    """Record which of the image's own box crops other images receive (reservoirs hold only
    kept boxes, so every requested box is already one of the image's crops)."""
    own = {request.key for request in plan.requests}
    for box_id, target, key in sorted(requests):
        if box_key(box_id) not in own:
            raise ValueError(
                f"{plan.image_id}: cross-image request for box {box_id}, which is not a kept box"
            )
        plan.deliveries.setdefault(box_key(box_id), []).append((target, key))


def finish_sample(
    metadata: Mapping, size: tuple[int, int], own: Mapping[str, bytes], cross: Mapping[str, bytes]
) -> dict[str, bytes]:
    """The encoded WebDataset sample of one image.

    Args:
        metadata: the plan's metadata.
        size: (width, height) of the source image in pixels, as stored.
        own: "img" and the bNNN crops of the image.
        cross: xNNN crops delivered by other images; a cross entry whose source image could
            not be decoded is absent here, and is dropped with its pair (the source's reject
            records why).
    """
    keep = [c for c in metadata["cross"] if c["key"] in cross]
    dropped = {c["key"] for c in metadata["cross"]} - {c["key"] for c in keep}
    final = dict(
        metadata,
        width=size[0],
        height=size[1],
        cross=keep,
        pairs=[p for p in metadata["pairs"] if p["child"] not in dropped],
    )
    entries = dict(own)
    entries.update({c["key"]: cross[c["key"]] for c in keep})
    return encode_sample(metadata["image_id"], entries, final)
