"""The report's sections about the run as HTML, each built from its part of stats.json: summary,
counts, rejects, per-image statistics and crop galleries (label pairs and trees are in
hierarchy_sections).
"""

from datetime import UTC, datetime

from hierdata.audit.page import cards, details, esc, image, num, table
from hierdata.audit.stats import PER_IMAGE, split_order
from schemas.layout import RUN_JSON, SIZES_JSON

PAPER_CLASSES_PER_IMAGE = 5.29
PAPER_HIERARCHY_CLASSES_PER_IMAGE = 61.5


def _total(per_split: dict) -> int:
    return sum(per_split.values())


def _identity(fingerprint: dict) -> str:
    """The store's checksum of an input, else its modification time (UTC)."""
    for key in ("md5Hash", "etag", "ETag", "crc32c"):
        if fingerprint.get(key):
            return f"{key} {fingerprint[key]}"
    try:
        stamp = datetime.fromtimestamp(float(fingerprint["mtime"]), UTC)
    except (KeyError, TypeError, ValueError):
        return str(fingerprint.get("updated") or "")
    return "mtime " + stamp.isoformat(timespec="seconds")


def _image_cards(images: dict | None) -> list[tuple[str, object]]:
    """Headline cards of run.json's "images": samples written of those planned, and the images
    missing (or not files) and corrupt (unreadable, truncated, undecodable)."""
    if not images:  # a run from before run.json recorded its images
        return [("images rejected", "unknown")]
    by_reason = images.get("by_reason", {})
    missing = sum(
        n for r, n in by_reason.items() if r in ("image_missing", "image_not_regular_file")
    )
    return [
        ("samples written / planned", f"{images['written']:,} / {images['planned']:,}"),
        ("images missing", missing),
        ("images corrupt", images.get("rejected", 0) - missing),
    ]


def summary(stats: dict) -> str:
    run, counts, pairs, tree = stats["run"], stats["counts"], stats["label_pairs"], stats["tree"]
    top = cards(
        [
            ("status", run.get("status") or "unknown"),
            ("images", _total(counts["images"])),
            ("boxes", _total(counts["boxes"])),
            ("kept boxes", _total(counts["kept_boxes"])),
            (
                "training pairs",
                _total(counts["image_box_pairs"]) + _total(counts["accepted_pairs"]),
            ),
            ("accepted label pairs", pairs["accepted"]),
            ("tree labels / edges", f"{tree['labels']:,} / {tree['edges']:,}"),
            ("rejected rows", stats["rejects"]["rows"]["total"]),
            *_image_cards(run.get("images")),
        ]
    )
    if run.get("error"):
        top += f'<p class="note"><b>The run failed</b>: {esc(run["error"])}</p>'
    guard = run.get("isa_guard") or {}
    if guard.get("state") == "on":
        guard_text = (
            f'<p class="muted">Is-a guard on: {guard.get("blocked", 0)} label pairs over both '
            f"thresholds refused as Subcategory (is-a) pairs of "
            f"<code>{esc(guard.get('hierarchy'))}</code>.</p>"
        )
    else:
        guard_text = (
            '<p class="note"><b>The is-a guard was off</b>: nothing kept label pairs related '
            "by Subcategory (Person/Woman, Vehicle/Car) out of the accepted part-of pairs. "
            f"Reason: {esc(guard.get('reason', 'unknown'))}.</p>"
        )
    when = (
        f"<p>Runner <b>{esc(run.get('runner'))}</b>, started {esc(run.get('started_at'))}, "
        f"finished {esc(run.get('finished_at'))} ({num(run.get('elapsed_seconds'), 1)} s). "
        f"Output <code>{esc(stats['output'])}</code>; inputs, options and versions are under "
        '<a href="#run-details">Run details</a>.</p>'
    )
    return top + guard_text + when


def run_details(stats: dict) -> str:
    """Inputs with their fingerprints, the resolved options and the versions (the long tables
    the summary leaves to the end of the page)."""
    run = stats["run"]
    inputs = table(
        ["input", "bytes", "sha256 of the first MiB", "store checksum / mtime"],
        [
            [i.get("url"), i.get("size"), i.get("sha256_first_mib"), _identity(i)]
            for i in run.get("inputs", [])
        ],
    )
    options = table(
        ["option", "value"],
        [
            [key, f"{value:g}" if isinstance(value, float) else str(value)]
            for key, value in sorted(run.get("options", {}).items())
        ],
    )
    versions = ", ".join(f"{k} {v}" for k, v in sorted(run.get("versions", {}).items()))
    return (
        "<h3>Inputs and fingerprints</h3>"
        + inputs
        + "<h3>Resolved options</h3>"
        + options
        + f'<p class="muted">Versions: {esc(versions)}</p>'
    )


def counts(stats: dict) -> str:
    per_stage = stats["counts"]
    splits = split_order(set().union(*(v.keys() for v in per_stage.values())))
    rows = [
        [stage, *(per_split.get(s, 0) for s in splits), _total(per_split)]
        for stage, per_split in per_stage.items()
    ]
    text = table(["stage", *splits, "total"], rows)
    mismatches = stats["run_json_mismatches"]
    if mismatches:
        text += (
            f'<p class="note">{RUN_JSON} counters disagree with the tables: '
            + esc(
                "; ".join(
                    f"{m['stage']}/{m['split']}: tables {m['tables']}, {RUN_JSON} {m['run_json']}"
                    for m in mismatches
                )
            )
            + "</p>"
        )
    else:
        text += (
            f'<p class="muted">Every count that {RUN_JSON} also records agrees with the tables.</p>'
        )
    return text + (
        '<p class="muted">lines = boxes + rejected rows; accepted_pairs are the '
        "box ⊃ box training pairs, candidate_pairs every box ⊃ box candidate; samples "
        f"come from the shards' {SIZES_JSON}.</p>"
    )


def _reject_tables(part: dict, empty: str) -> str:
    if not part["total"]:
        return f"<p>{esc(empty)}</p>"
    splits = split_order(part["by_split"])
    rows = [
        [reason, *(part["by_split"][s].get(reason, 0) for s in splits), n]
        for reason, n in part["by_reason"].items()
    ]
    text = table(["reason", *splits, "total"], rows, sortable=True)
    for reason, examples in part["examples"].items():
        text += f"<h3>{esc(reason)}</h3>" + table(
            ["split", "file", "line", "raw"],
            [[e["split"], e["file"], e["line"], (e["raw"] or "")[:300]] for e in examples],
        )
    return text


def rejects(stats: dict) -> str:
    return _reject_tables(stats["rejects"]["rows"], "No input row was rejected.")


def missing_images(stats: dict) -> str:
    if stats["run"].get("options", {}).get("skip_images"):
        return "<p>This run did not read images (--skip_images): nothing to report.</p>"
    return _reject_tables(stats["rejects"]["images"], "Every image was read and decoded.")


def per_image(stats: dict) -> str:
    part = stats["per_image"]
    splits = list(part["by_split"])
    rows = []
    for name in PER_IMAGE:
        row = [name.replace("_", " ")]
        for split in splits:
            values = part["by_split"][split]
            row.append(
                f"{values[name + '_mean'] or 0:.2f} · {num(values[name + '_median'], 1)}"
                f" · {num(values[name + '_p90'], 1)} · {num(values[name + '_max'])}"
            )
        rows.append(row)
    rows.append(["images", *(num(part["by_split"][s]["images"]) for s in splits)])
    overall = part["by_split"].get("all", {})
    return (
        cards(
            [
                ("distinct classes per image", f"{overall.get('classes_mean') or 0:.2f}"),
                (
                    "classes across its hierarchy trees",
                    f"{overall.get('hierarchy_classes_mean') or 0:.2f}",
                ),
                ("boxes per image", f"{overall.get('boxes_mean') or 0:.2f}"),
            ]
        )
        + f"<p>{esc(part['definition'])}</p>"
        + "<p class='muted'>Each cell: mean · median · 90th percentile · max.</p>"
        + table(["per image", *splits], rows)
        + image(stats["plots"]["per_image"], "per-image distributions")
        + f"<h3>Class frequency (top {len(stats['class_frequency']['top'])})</h3>"
        + image(stats["plots"]["class_frequency"], "class frequency of the top labels")
        + details(
            "table",
            table(
                ["label", "id", "kept boxes"],
                [[r["name"], r["label"], r["boxes"]] for r in stats["class_frequency"]["top"]],
            ),
        )
    )


def _outlined(example: dict) -> str:
    """The parent crop with the child's box drawn on it, when the gallery has it."""
    src = example.get("outlined_src")
    return f'<img src="{esc(src)}" alt="child box on the parent crop">' if src else ""


def galleries(stats: dict) -> str:
    gallery = stats["gallery"]
    if gallery["note"]:
        return f"<p>{esc(gallery['note'])}</p>"
    text = (
        "<p class='muted'>Parent crop with the child's box drawn in red (left), then the "
        "parent and child crops as stored, of box ⊃ box training pairs, for the most frequent "
        "accepted label pairs, read from " + esc(", ".join(gallery["shards_read"])) + ".</p>"
    )
    for pair in gallery["pairs"]:
        text += (
            f"<h3>{esc(pair['parent_name'])} ⊃ {esc(pair['child_name'])} "
            f'<span class="muted">({num(pair["frequency"])} box pairs)</span></h3>'
        )
        if not pair["examples"]:
            text += "<p class='muted'>No example in the shards read.</p>"
            continue
        text += (
            '<div class="gallery">'
            + "".join(
                f'<figure>{_outlined(e)}<img src="{esc(e["parent_src"])}" alt="parent crop">'
                f'<img src="{esc(e["child_src"])}" alt="child crop"><figcaption>'
                f"{esc(e['split'])} {esc(e['image_id'])}: b{e['parent_box']:03d} ⊃ "
                f"b{e['child_box']:03d}</figcaption></figure>"
                for e in pair["examples"]
            )
            + "</div>"
        )
    return text
