"""The report's sections about label pairs and hierarchies as HTML: the label-pair table,
threshold sensitivity, the label tree, the official hierarchy and the comparison of two runs.
"""

import polars as pl

from hierdata.audit.page import cards, cell, details, esc, image, num, table
from schemas.report_layout import LABEL_PAIRS_CSV

LABEL_PAIR_ROWS = 2000  # rows in the page's label-pair table; label_pairs.csv has them all
MULTI_PARENTS_SHOWN = 8  # parents listed per multi-parent label (stats.json has them all)


def label_pairs(stats: dict, frame: pl.DataFrame) -> str:
    totals = stats["label_pairs"]
    shown = frame.head(LABEL_PAIR_ROWS)
    rows = []
    for r in shown.iter_rows(named=True):
        classes = ("yes" if r["accepted"] else "no") + (" isa" if r["isa"] else "")
        refused = "is-a" if r["isa"] else ("same object" if r["same_object"] else "")
        rows.append(
            f'<tr class="{classes}">'
            f"<td>{esc(r['parent_name'])} <code>{esc(r['parent_label'])}</code></td>"
            f"<td>{esc(r['child_name'])} <code>{esc(r['child_label'])}</code></td>"
            + cell(r["frequency"])
            + cell(r["parents_with_child"])
            + cell(r["parent_boxes"])
            + cell(r["proportion"], 4)
            + cell(r["children_with_parent"])
            + cell(r["child_boxes"])
            + cell(r["iou_median"], 3)
            + cell(r["near_duplicate_share"], 3)
            + f'<td data-v="{int(r["isa"]) + 2 * int(r["same_object"])}">{refused}</td>'
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
        "children with parent",
        "child boxes",
        "IoU median",
        "IoU ≥ 0.5 share",
        "refused as",
        "accepted",
    ]
    head = "".join(f"<th>{h}</th>" for h in headers)
    note = (
        f"Showing {shown.height:,} of {frame.height:,} label pairs (accepted first, then by "
        f'frequency); all of them are in <a href="{LABEL_PAIRS_CSV}">{LABEL_PAIRS_CSV}</a>. '
        "IoU median: the median IoU of the pair's candidate box pairs (from a histogram of "
        "0.01-wide bins); a pair whose median reaches --same_object_iou names one object under "
        "two labels (Tire/Wheel, Woman/Girl) and is refused as the same object."
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
                ("refused as one object", totals["same_object_blocked"]),
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
        f"is-a, not one object) to the label_pairs statistics and rebuilds the label tree, so "
        f"thresholds can "
        f"be chosen without rerunning the pipeline. Training pairs = image ⊃ box pairs + "
        f"box ⊃ box candidates (all splits) whose label pair survives. The run used "
        f"f = {chosen['frequency']}, p = {chosen['proportion']:g}: {num(at['label_pairs'])} "
        f"label pairs, {num(at['tree_edges'])} tree edges, {num(at['training_pairs'])} "
        f"training pairs. Tree edges are left out (–) above "
        f"{grid['max_tree_pairs']:,} accepted pairs.</p>"
        + image(stats["plots"]["thresholds"], "threshold sensitivity heatmaps")
    )


def _candidate(parent: dict) -> str:
    """One candidate parent with its evidence: boxes inside, share and interval, p, f."""
    mark = "✔ " if parent["kept"] else ""
    note = " (gave way)" if parent["gave_way"] else ("" if parent["comparable"] else " ·")
    return (
        f"{mark}{esc(parent['name'])}: {parent['children_with_parent']}/{parent['child_boxes']}"
        f" = {parent['share']:.2f} [{parent['share_low']:.2f}, {parent['share_high']:.2f}], "
        f"p={parent['proportion']:.3f}, f={parent['frequency']}{note}"
    )


def tree(stats: dict, tree_markup: str) -> str:
    info = stats["tree"]
    multi = info["multi_parent"]
    rows = []
    for entry in multi:
        # The strongest few and the kept one: Open Images' Person can have hundreds.
        shown = [p for i, p in enumerate(entry["parents"]) if i < MULTI_PARENTS_SHOWN or p["kept"]]
        candidates = "<br>".join(_candidate(p) for p in shown)
        if len(entry["parents"]) > len(shown):
            candidates += f"<br>… {len(entry['parents']) - len(shown)} more"
        rows.append(
            "<tr>"
            f"<td>{esc(entry['child_name'])}</td><td><code>{esc(entry['child'])}</code></td>"
            + cell(len(entry["parents"]))
            + f"<td>{candidates}</td><td>{esc(entry['kept_parent_name'])}</td>"
            f"<td>{esc(entry['reason'])}</td></tr>"
        )
    headers = ["label", "id", "parents", "candidate parents (✔ kept)", "kept parent", "why"]
    head = "".join(f"<th>{h}</th>" for h in headers)
    multi_html = (
        f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        if rows
        else "<p>No label has several parents in the label graph.</p>"
    )
    toolbar = (
        '<div class="toolbar"><button type="button" onclick="setTree(true)">expand all'
        '</button> <button type="button" onclick="setTree(false)">collapse all</button> '
        '<input type="search" id="tree-text" placeholder="find a label"> '
        '<span id="tree-count" class="muted"></span></div>'
    )
    rule = (
        "<p class='muted'>Evaluation's ground truth is the closure of the label graph (every "
        "accepted pair, after the 2-cycle and cycle rules), not this tree. For display each "
        "label keeps one parent: the one whose boxes hold the most of the label's boxes "
        "(children with parent / child boxes, with a 95% Wilson interval); among parents whose "
        "interval reaches the strongest's lower bound, one that is an ancestor of another in "
        "the label graph gives way to it (Car ⊃ Wheel ⊃ Hubcap keeps Wheel). Each candidate: "
        "boxes inside / child boxes = share [interval], proportion, frequency; · marks a "
        "parent outside the strongest's interval.</p>"
    )
    return (
        cards(
            [
                ("labels", info["labels"]),
                ("label → label edges", info["edges"]),
                ("label-graph edges", info["graph_edges"]),
                ("ground-truth pairs (closure)", info["closure_pairs"]),
                ("under the root", info["under_root"]),
                ("max depth", info["max_depth"]),
                ("leaves", info["leaves"]),
                ("multi-parent labels", len(multi)),
            ]
        )
        + image(stats["plots"]["tree_top"], "top levels of the label tree")
        + image(stats["plots"]["tree_distributions"], "depth and branching distributions")
        + f"<h3>Multi-parent labels resolved ({len(multi)})</h3>"
        + rule
        + multi_html
        + "<h3>The whole tree</h3>"
        + toolbar
        + f'<div id="tree" class="scroll">{tree_markup}</div>'
    )


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
