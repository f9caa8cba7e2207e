"""The report's sections as HTML, each built from its part of stats.json (plus the label-pair
rows and the tree markup, which stats.json leaves out).
"""

from datetime import UTC, datetime

import polars as pl

from hierdata.audit.page import cards, cell, details, esc, image, num, table
from hierdata.audit.stats import PER_IMAGE, split_order

LABEL_PAIR_ROWS = 2000  # rows in the page's label-pair table; label_pairs.csv has them all
MULTI_PARENTS_SHOWN = 8  # parents listed per multi-parent label (stats.json has them all)
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
        ]
    )
    when = (
        f"<p>Runner <b>{esc(run.get('runner'))}</b>, started {esc(run.get('started_at'))}, "
        f"finished {esc(run.get('finished_at'))} ({num(run.get('elapsed_seconds'), 1)} s). "
        f"Output <code>{esc(stats['output'])}</code>.</p>"
    )
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
        top
        + when
        + "<h3>Inputs and fingerprints</h3>"
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
            '<p class="note">run.json counters disagree with the tables: '
            + esc(
                "; ".join(
                    f"{m['stage']}/{m['split']}: tables {m['tables']}, run.json {m['run_json']}"
                    for m in mismatches
                )
            )
            + "</p>"
        )
    else:
        text += (
            '<p class="muted">Every count that run.json also records agrees with the tables.</p>'
        )
    return text + (
        '<p class="muted">lines = boxes + rejected rows; accepted_pairs are the '
        "box ⊃ box training pairs, candidate_pairs every box ⊃ box candidate; samples "
        "come from the shards' sizes.json.</p>"
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


def label_pairs(stats: dict, frame: pl.DataFrame) -> str:
    totals = stats["label_pairs"]
    shown = frame.head(LABEL_PAIR_ROWS)
    rows = []
    for r in shown.iter_rows(named=True):
        classes = ("yes" if r["accepted"] else "no") + (" isa" if r["isa"] else "")
        rows.append(
            f'<tr class="{classes}">'
            f"<td>{esc(r['parent_name'])} <code>{esc(r['parent_label'])}</code></td>"
            f"<td>{esc(r['child_name'])} <code>{esc(r['child_label'])}</code></td>"
            + cell(r["frequency"])
            + cell(r["parents_with_child"])
            + cell(r["parent_boxes"])
            + cell(r["proportion"], 4)
            + f'<td data-v="{int(r["isa"])}">{"is-a" if r["isa"] else ""}</td>'
            f'<td class="acc" data-v="{int(r["accepted"])}">{"yes" if r["accepted"] else "no"}'
            "</td></tr>"
        )
    headers = [
        "parent",
        "child",
        "frequency",
        "parents with child",
        "parent boxes",
        "proportion",
        "isa",
        "accepted",
    ]
    head = "".join(f"<th>{h}</th>" for h in headers)
    note = (
        f"Showing {shown.height:,} of {frame.height:,} label pairs (accepted first, then by "
        'frequency); all of them are in <a href="label_pairs.csv">label_pairs.csv</a>.'
    )
    toolbar = (
        '<div class="toolbar"><input type="search" id="lp-text" '
        'placeholder="filter by name or id"> <label><input type="checkbox" '
        'id="lp-accepted"> accepted only</label> <label><input type="checkbox" '
        'id="lp-isa"> is-a only</label> <span id="lp-count" class="muted"></span></div>'
    )
    return (
        cards(
            [
                ("candidate label pairs", totals["candidate"]),
                ("accepted", totals["accepted"]),
                ("is-a pairs", totals["isa"]),
                ("blocked by the is-a guard", totals["isa_blocked"]),
            ]
        )
        + f'<p class="muted">{note} Click a header to sort.</p>'
        + toolbar
        + f'<div class="scroll"><table class="sortable" id="lp-table"><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def thresholds(stats: dict) -> str:
    grid = stats["thresholds"]
    chosen = grid["chosen"]
    row = grid["proportion"].index(chosen["proportion"])
    column = grid["frequency"].index(chosen["frequency"])
    at = {key: grid[key][row][column] for key in ("label_pairs", "tree_edges", "training_pairs")}
    return (
        f"<p>Each cell re-applies the acceptance rule (frequency ≥ f, proportion ≥ p, not "
        f"is-a) to the label_pairs statistics and rebuilds the label tree, so thresholds can "
        f"be chosen without rerunning the pipeline. Training pairs = image ⊃ box pairs + "
        f"box ⊃ box candidates (all splits) whose label pair survives. The run used "
        f"f = {chosen['frequency']}, p = {chosen['proportion']:g}: {num(at['label_pairs'])} "
        f"label pairs, {num(at['tree_edges'])} tree edges, {num(at['training_pairs'])} "
        f"training pairs. Tree edges are left out (–) above "
        f"{grid['max_tree_pairs']:,} accepted pairs.</p>"
        + image(stats["plots"]["thresholds"], "threshold sensitivity heatmaps")
    )


def tree(stats: dict, tree_markup: str) -> str:
    info = stats["tree"]
    multi = info["multi_parent"]
    rows = []
    for entry in multi:
        # The strongest few and the kept one: Open Images' Person can have hundreds.
        shown = [p for i, p in enumerate(entry["parents"]) if i < MULTI_PARENTS_SHOWN or p["kept"]]
        parents = "; ".join(
            f"{'✔ ' if p['kept'] else ''}{p['name']} (p={p['proportion']:.3f}, f={p['frequency']})"
            for p in shown
        )
        if len(entry["parents"]) > len(shown):
            parents += f"; … {len(entry['parents']) - len(shown)} more"
        rows.append(
            [
                entry["child_name"],
                entry["child"],
                len(entry["parents"]),
                parents,
                entry["kept_parent_name"] or "scene",
            ]
        )
    headers = ["label", "id", "parents", "accepted parents (✔ kept)", "kept parent"]
    multi_html = (
        f'<div class="scroll">{table(headers, rows, sortable=True)}</div>'
        if rows
        else "<p>No label has several accepted parents.</p>"
    )
    toolbar = (
        '<div class="toolbar"><button type="button" onclick="setTree(true)">expand all'
        '</button> <button type="button" onclick="setTree(false)">collapse all</button> '
        '<input type="search" id="tree-text" placeholder="find a label"> '
        '<span id="tree-count" class="muted"></span></div>'
    )
    return (
        cards(
            [
                ("labels", info["labels"]),
                ("label → label edges", info["edges"]),
                ("under the root", info["under_root"]),
                ("max depth", info["max_depth"]),
                ("leaves", info["leaves"]),
                ("multi-parent labels", len(multi)),
            ]
        )
        + image(stats["plots"]["tree_top"], "top levels of the label tree")
        + image(stats["plots"]["tree_distributions"], "depth and branching distributions")
        + f"<h3>Multi-parent labels resolved ({len(multi)})</h3>"
        + "<p class='muted'>Labels accepted under several parents; the tree keeps the most "
        "granular parent (a descendant of the others), else the highest proportion.</p>"
        + multi_html
        + "<h3>The whole tree</h3>"
        + toolbar
        + f'<div id="tree" class="scroll">{tree_markup}</div>'
    )


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


def galleries(stats: dict) -> str:
    gallery = stats["gallery"]
    if gallery["note"]:
        return f"<p>{esc(gallery['note'])}</p>"
    text = (
        "<p class='muted'>Parent crop (left) and child crop (right) of box ⊃ box training "
        "pairs, for the most frequent accepted label pairs, read from "
        + esc(", ".join(gallery["shards_read"]))
        + ".</p>"
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
                f'<figure><img src="{esc(e["parent_src"])}" alt="parent crop">'
                f'<img src="{esc(e["child_src"])}" alt="child crop"><figcaption>'
                f"{esc(e['split'])} {esc(e['image_id'])}: b{e['parent_box']:03d} ⊃ "
                f"b{e['child_box']:03d}</figcaption></figure>"
                for e in pair["examples"]
            )
            + "</div>"
        )
    return text


def _pair_list(pairs: list, names: dict) -> str:
    rows = [[names.get(p, p), p, names.get(c, c), c] for p, c in pairs]
    return table(["parent", "id", "child", "id"], rows, sortable=True) if rows else "<p>none</p>"


def official(stats: dict) -> str:
    agreement = stats["official_hierarchy"]
    if agreement is None:
        return "<p>The input has no label hierarchy (bbox_labels_600_hierarchy.json).</p>"
    names, counts_ = agreement.get("names", {}), agreement["counts"]
    text = cards(
        [
            ("official Part edges", agreement["official_part_edges"]),
            ("official part-of relations", agreement["official_part_relations"]),
            ("accepted pairs", agreement["accepted"]),
            ("accepted and official Part", counts_["accepted_official_part"]),
            ("accepted and new", counts_["accepted_new"]),
            ("blocked as is-a", counts_["isa_blocked"]),
            ("official Part edges not accepted", counts_["official_not_accepted"]),
        ]
    )
    titles = {
        "accepted_official_part": "Accepted pairs that are official part-of relations",
        "accepted_new": "Accepted pairs the hierarchy does not state",
        "isa_blocked": "Pairs over both thresholds blocked by the is-a guard",
        "official_not_accepted": "Official Part edges that were not accepted",
    }
    for key, title in titles.items():
        text += details(
            f"{esc(title)} ({counts_[key]})",
            _pair_list(agreement[key], names),
            open_=key == "accepted_new",
        )
    return text + f'<p class="muted">Source: {esc(agreement.get("source"))}.</p>'


def compare(stats: dict) -> str:
    diff = stats["compare"]
    text = f"<p>This run against <code>{esc(diff['other'])}</code>; gained = here only.</p>"
    for key, title in (("label_pairs", "Accepted label pairs"), ("tree_edges", "Tree edges")):
        for side in ("gained", "lost"):
            rows = [
                [r["parent_name"], r["parent"], r["child_name"], r["child"]]
                for r in diff[key][side]
            ]
            body = (
                table(["parent", "id", "child", "id"], rows, sortable=True)
                if rows
                else "<p>none</p>"
            )
            text += details(f"{title} {side} ({len(rows)})", body, open_=bool(rows))
    changed = [r for r in diff["counts"] if r["change"] != 0]
    text += "<h3>Counts that changed</h3>" + (
        table(
            ["count", "this run", "other run", "change"],
            [[r["key"], r["this"], r["other"], r["change"]] for r in changed],
            sortable=True,
        )
        if changed
        else "<p>No count changed.</p>"
    )
    if diff["options"]:
        text += "<h3>Options that differ</h3>" + table(
            ["option", "this run", "other run"],
            [[r["key"], r["this"], r["other"]] for r in diff["options"]],
        )
    return text
