"""The input files of an Open Images root: where each is, and the small ones read whole.

Class descriptions and the label hierarchy are read by the launcher; the bbox CSVs are read in
byte-range chunks by hierdata.readers.
"""

import csv
import io as textio
import json
import posixpath
import sys
from dataclasses import dataclass

from hierdata import io
from hierdata.errors import InputError

BBOX_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("oidv6-train-annotations-bbox.csv", "train-annotations-bbox.csv"),
    "validation": ("validation-annotations-bbox.csv",),
    "test": ("test-annotations-bbox.csv",),
}
CLASS_DESCRIPTION_NAMES = (
    "oidv7-class-descriptions-boxable.csv",
    "class-descriptions-boxable.csv",
    "class-descriptions.csv",
)
HIERARCHY_NAMES = ("bbox_labels_600_hierarchy.json",)
HIERARCHY_RELATIONS = ("Subcategory", "Part")

# Header names a class-description file may start with when its labels do not start with "/".
_CLASS_HEADER_FIELDS = {"label", "labelname", "label_name", "id"}


@dataclass(frozen=True)
class InputFiles:
    """The annotation files found under one Open Images root (URLs, not opened yet)."""

    root: str
    bbox: dict[str, str]  # split -> url, in order train, validation, test (only those found)
    class_descriptions: str | None
    hierarchy: str | None


def find_inputs(root: str) -> InputFiles:
    """Locate the annotation files under `root` (local path or fsspec URL).

    For each role the first name that exists wins, in the order of BBOX_NAMES,
    CLASS_DESCRIPTION_NAMES and HIERARCHY_NAMES. Raises InputError when the root is missing,
    is not a folder, or holds no bbox file.
    """
    fs, path = io.filesystem(root)
    if not fs.exists(path):
        raise InputError(f"input root not found: {root}")
    if not fs.isdir(path):
        raise InputError(f"input root is not a folder: {root}")
    present = {posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)}

    def first(names: tuple[str, ...]) -> str | None:
        return next((io.join(root, name) for name in names if name in present), None)

    bbox = {split: url for split, names in BBOX_NAMES.items() if (url := first(names))}
    if not bbox:
        expected = ", ".join(name for names in BBOX_NAMES.values() for name in names)
        raise InputError(f"no bbox annotation file under {root} (expected one of {expected})")
    return InputFiles(root, bbox, first(CLASS_DESCRIPTION_NAMES), first(HIERARCHY_NAMES))


def _is_class_header(first: list[str], second: list[str] | None) -> bool:
    """A first row is a header when its label field is not a label id: ids start with "/"
    (Open Images "/m/..."); for other datasets, a known header name or a "/" id below it."""
    field = first[0].strip()
    if field.startswith("/"):
        return False
    return field.lower() in _CLASS_HEADER_FIELDS or (
        second is not None and second[0].strip().startswith("/")
    )


def read_class_descriptions(url: str) -> dict[str, str]:
    """Label id -> display name, from a two-column CSV with or without a header line.

    Names may be quoted and contain commas or doubled quotes (V3 class-descriptions.csv); CRLF
    and a UTF-8 BOM are fine. The first occurrence of a repeated id wins. Raises InputError for
    a missing or empty file or a row without a name.
    """
    text = io.read_bytes(url).decode("utf-8-sig", errors="replace")
    rows = [row for row in csv.reader(textio.StringIO(text, newline="")) if any(row)]
    if not rows:
        raise InputError(f"{url}: empty class descriptions")
    if _is_class_header(rows[0], rows[1] if len(rows) > 1 else None):
        rows = rows[1:]
    names: dict[str, str] = {}
    for row in rows:
        if len(row) < 2:
            raise InputError(f"{url}: class description without a name: {','.join(row)!r}")
        # An unquoted comma inside a name splits it; the name is everything after the id.
        names.setdefault(row[0].strip(), ",".join(row[1:]).strip())
    if not names:
        raise InputError(f"{url}: empty class descriptions")
    return names


def read_hierarchy(url: str) -> list[tuple[str, str, str]]:
    """Edges (parent, child, relation) of the nested bbox_labels_600_hierarchy.json.

    relation is "Subcategory" (is-a) or "Part" (part-of). Order is depth-first pre-order as in
    the file (a child's edge, then its subtree); repeated edges keep their first position.
    Raises InputError on invalid JSON or a node without a LabelName.
    """
    try:
        tree = json.loads(io.read_bytes(url))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{url}: invalid hierarchy JSON: {err}") from err
    except RecursionError as err:  # the json module recurses once per nesting level
        raise InputError(
            f"{url}: hierarchy JSON nested deeper than the parser allows "
            f"(about {sys.getrecursionlimit()} levels)"
        ) from err
    edges: dict[tuple[str, str, str], None] = {}
    # Explicit stack of (parent, relation, child node) so deep trees cannot hit the recursion
    # limit; children are pushed reversed so they pop in file order.
    stack = list(reversed(_children(url, tree)))
    while stack:
        parent, relation, node = stack.pop()
        edges.setdefault((parent, node["LabelName"], relation), None)
        stack.extend(reversed(_children(url, node)))
    return list(edges)


def _children(url: str, node: object) -> list[tuple[str, str, dict]]:
    """(label, relation, child node) for each child of a hierarchy node, in file order."""
    if not isinstance(node, dict) or not isinstance(node.get("LabelName"), str):
        raise InputError(f"{url}: hierarchy node without a LabelName: {str(node)[:80]}")
    children = []
    for relation, members in node.items():
        if relation not in HIERARCHY_RELATIONS:
            continue
        for child in members if isinstance(members, list) else [members]:
            if not isinstance(child, dict) or not isinstance(child.get("LabelName"), str):
                raise InputError(f"{url}: hierarchy node without a LabelName: {str(child)[:80]}")
            children.append((node["LabelName"], relation, child))
    return children
