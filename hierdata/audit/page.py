"""The report page's frame: inline CSS and script (no network, works from file://), and small
HTML builders (escaped cells, tables, number formats) that the sections share.
"""

import html
from collections.abc import Iterable, Sequence

CSS = """
:root { --fg:#1d2733; --muted:#5b6b7b; --line:#d9e0e7; --accent:#1f6feb; --bg2:#f5f7fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); margin: 0; }
header { background: #14202e; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 4px 0 0; color: #b8c4d0; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line);
      padding: 6px 24px; z-index: 2; display: flex; flex-wrap: wrap; gap: 2px 14px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
main { padding: 8px 24px 40px; max-width: 1500px; }
section { overflow-x: auto; } td { overflow-wrap: anywhere; }
section { margin-top: 26px; } h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg2); } td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " ⇅"; color: #a0acb8; font-size: 11px; }
tr.yes td.acc { color: #137333; font-weight: 600; } td.warn { color: #b3261e; }
code { font-size: 12px; color: var(--muted); }
.muted { color: var(--muted); } .note { background: #fff8e1; border-left: 4px solid #f2c94c;
  padding: 6px 10px; margin: 8px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.card b { display: block; font-size: 20px; }
img.plot { max-width: 100%; border: 1px solid var(--line); margin: 6px 0; }
.scroll { max-height: 520px; overflow: auto; border: 1px solid var(--line); }
.scroll table { margin: 0; } .toolbar { margin: 6px 0; }
.toolbar input[type=search] { width: 260px; }
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; margin: 0; }
ul.tree { padding-left: 0; } ul.tree li { margin: 1px 0; }
.td { color: var(--muted); font-size: 12px; } .tc { color: var(--muted); font-size: 12px; }
li.hit > .tn, li.hit > details > summary > .tn, .tn.hit { background: #fff1a8; }
.gallery { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; border: 1px solid var(--line); padding: 6px; border-radius: 6px; }
figure img { height: 128px; width: auto; margin-right: 4px; background: #eee; }
figcaption { font-size: 12px; color: var(--muted); max-width: 300px; }
"""

# Runs first: counts script errors and broken images so a headless browser can read them
# from <html data-...> (tests and CI check them; a person sees them in the footer).
CHECK_SCRIPT = """
window.auditErrors = 0;
window.addEventListener('error', function () { window.auditErrors += 1; }, true);
window.addEventListener('load', function () {
  var images = document.images, broken = 0;
  for (var i = 0; i < images.length; i++) {
    if (!images[i].complete || images[i].naturalWidth === 0) { broken += 1; }
  }
  var root = document.documentElement;
  root.setAttribute('data-images', images.length);
  root.setAttribute('data-broken-images', broken);
  root.setAttribute('data-errors', window.auditErrors);
  // wider than the window means a horizontal scroll bar: the page must fit 900 px
  root.setAttribute('data-overflow', root.scrollWidth > window.innerWidth ? '1' : '0');
  root.setAttribute('data-ready', '1');
  var foot = document.getElementById('self-check');
  if (foot) { foot.textContent = 'page check: ' + images.length + ' images, ' + broken +
    ' not loaded, ' + window.auditErrors + ' script errors'; }
});
"""

PAGE_SCRIPT = """
function cellValue(row, index) {
  var cell = row.cells[index];
  var v = cell.getAttribute('data-v');
  return v === null ? cell.textContent.trim().toLowerCase() : v;
}
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, index) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var up = th.getAttribute('data-dir') !== 'asc';
      th.setAttribute('data-dir', up ? 'asc' : 'desc');
      rows.sort(function (a, b) {
        var x = cellValue(a, index), y = cellValue(b, index);
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : (x < y ? -1 : x > y ? 1 : 0);
        return up ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
function filterPairs() {
  var text = document.getElementById('lp-text').value.trim().toLowerCase();
  var only = document.getElementById('lp-accepted').checked;
  var isa = document.getElementById('lp-isa').checked;
  var shown = 0, rows = document.getElementById('lp-table').tBodies[0].rows;
  for (var i = 0; i < rows.length; i++) {
    var row = rows[i];
    var ok = (!text || row.textContent.toLowerCase().indexOf(text) >= 0) &&
      (!only || row.classList.contains('yes')) && (!isa || row.classList.contains('isa'));
    row.style.display = ok ? '' : 'none';
    if (ok) { shown += 1; }
  }
  document.getElementById('lp-count').textContent = shown + ' rows shown';
}
['lp-text', 'lp-accepted', 'lp-isa'].forEach(function (id) {
  var input = document.getElementById(id);
  if (input) { input.addEventListener('input', filterPairs); }
});
if (document.getElementById('lp-table')) { filterPairs(); }
function setTree(open) {
  document.querySelectorAll('#tree details').forEach(function (d) { d.open = open; });
}
function searchTree() {
  var text = document.getElementById('tree-text').value.trim().toLowerCase(), hits = 0;
  document.querySelectorAll('#tree .tn').forEach(function (name) {
    var hit = text.length > 0 && name.getAttribute('data-name').indexOf(text) >= 0;
    name.classList.toggle('hit', hit);
    if (hit) {
      hits += 1;
      for (var d = name.parentElement; d && d.id !== 'tree'; d = d.parentElement) {
        if (d.tagName === 'DETAILS') { d.open = true; }
      }
    }
  });
  document.getElementById('tree-count').textContent = text ? hits + ' labels match' : '';
}
var treeText = document.getElementById('tree-text');
if (treeText) { treeText.addEventListener('input', searchTree); }
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def num(value: float | int | None, digits: int = 3) -> str:
    """Thousands separators for ints, `digits` decimals for floats, "–" for None."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def cell(value: object, digits: int = 3) -> str:
    """A <td>: numbers right-aligned with a data-v sort key, anything else escaped."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="n" data-v="{value}">{num(value, digits)}</td>'
    return f"<td>{esc(value)}</td>"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    sortable: bool = False,
    table_id: str | None = None,
    raw: bool = False,
) -> str:
    """An HTML table; cells are escaped unless raw (then each cell is ready <td> markup)."""
    attrs = (' class="sortable"' if sortable else "") + (f' id="{table_id}"' if table_id else "")
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + ("".join(r) if raw else "".join(cell(v) for v in r)) + "</tr>" for r in rows
    )
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cards(items: Iterable[tuple[str, object]]) -> str:
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{esc(num(value) if not isinstance(value, str) else value)}</b>'
            f"{esc(label)}</div>"
            for label, value in items
        )
        + "</div>"
    )


def image(src: str, alt: str) -> str:
    return f'<img class="plot" src="{esc(src)}" alt="{esc(alt)}">'


def details(summary: str, body: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{summary}</summary>{body}</details>"


def document(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole page; sections are (anchor id, heading, body HTML)."""
    nav = "".join(f'<a href="#{esc(anchor)}">{esc(heading)}</a>' for anchor, heading, _ in sections)
    body = "".join(
        f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>{content}</section>'
        for anchor, heading, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{CHECK_SCRIPT}</script>"
        f"</head><body><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{body}"
        '<p class="muted" id="self-check">page check: running</p></main>'
        f"<script>{PAGE_SCRIPT}</script></body></html>\n"
    )
