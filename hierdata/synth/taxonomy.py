"""The synthetic dataset's labels and their true relations: the taxonomy, its part-of closure and
the Open Images-format hierarchy JSON (true relations as Part, synonyms as Subcategory).
"""

from dataclasses import dataclass

ROOT_LABEL = "/m/syn_entity"  # like Open Images' "Entity": the JSON root, no boxes, no class row


@dataclass(frozen=True)
class SynthLabel:
    """One label; `parent` is its true part-of parent (None: top level or outside the tree)."""

    label_id: str
    name: str
    parent: str | None
    level: str  # "object" | "part" | "subpart"; labels outside the true tree are "object"


def _id(name: str) -> str:
    return "/m/syn_" + name.lower().replace(" ", "_")


TAXONOMY: tuple[SynthLabel, ...] = tuple(
    SynthLabel(_id(name), name, _id(parent) if parent else None, level)
    for name, parent, level in (
        ("Car", None, "object"),
        ("Wheel", "Car", "part"),
        ("Hubcap", "Wheel", "subpart"),
        ("Car door", "Car", "part"),
        ("Door handle", "Car door", "subpart"),
        ("License plate", "Car", "part"),
        ("House", None, "object"),
        ("Roof", "House", "part"),
        ("Chimney", "Roof", "subpart"),
        ("Window", "House", "part"),
        ("Door", "House", "part"),
        ("Person", None, "object"),
        ("Face", "Person", "part"),
        ("Eye", "Face", "subpart"),
        ("Table", None, "object"),
        ("Bus", None, "object"),
        ("Aquarium", None, "object"),
        # Adversarial labels (module docstring): none has a true part-of relation.
        ("Desk", None, "object"),
        ("Tablecloth", None, "object"),
        ("Coach", None, "object"),
        ("Fish", None, "object"),
        ("Flag", None, "object"),
        ("Bird", None, "object"),
        ("Lug nut", None, "object"),
        ("Balloon", None, "object"),
    )
)
# Is-a (Subcategory) edges, for the is-a guard: the synonyms' boxes duplicate the general label's.
SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    _id("Table"): (_id("Desk"),),
    _id("Bus"): (_id("Coach"),),
}


def true_part_of_pairs() -> frozenset[tuple[str, str]]:
    """(ancestor_id, descendant_id) for every ancestor of every label: the transitive closure."""
    parent = {label.label_id: label.parent for label in TAXONOMY}
    pairs = set()
    for label in TAXONOMY:
        ancestor = label.parent
        while ancestor is not None:
            pairs.add((ancestor, label.label_id))
            ancestor = parent[ancestor]
    return frozenset(pairs)


def hierarchy() -> dict:
    """Open Images' nested hierarchy JSON: true relations as Part, synonyms as Subcategory."""
    children: dict[str | None, list[str]] = {}
    for label in TAXONOMY:
        children.setdefault(label.parent, []).append(label.label_id)

    def node(label_id: str) -> dict:
        out: dict = {"LabelName": label_id}
        if label_id in children:
            out["Part"] = [node(child) for child in children[label_id]]
        if label_id in SUBCATEGORIES:
            out["Subcategory"] = [{"LabelName": s} for s in SUBCATEGORIES[label_id]]
        return out

    synonyms = {s for subs in SUBCATEGORIES.values() for s in subs}
    return {
        "LabelName": ROOT_LABEL,
        "Subcategory": [node(i) for i in children[None] if i not in synonyms],
    }
