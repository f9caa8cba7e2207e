"""Label-pair statistics: how often label P contains label C, and which pairs are accepted.

Counts are additive: `LabelPairCounts` of disjoint batches of images sum to the counts of the
whole, so any runner can combine them in any grouping.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import LABEL_COUNTS, LABEL_PAIRS, PAIR_COUNTS

_KEY_SEPARATOR = "\x1f"  # ASCII unit separator: never part of a label id
_LABEL_PAIR = ["parent_label", "child_label"]


def passes_thresholds(
    frequency: np.ndarray | pa.Array | pa.ChunkedArray,
    proportion: np.ndarray | pa.Array | pa.ChunkedArray,
    min_pair_frequency: float,
    min_pair_proportion: float,
) -> np.ndarray:
    """The DESIGN threshold rule: ``frequency >= min_pair_frequency`` and ``proportion >=
    min_pair_proportion`` (both inclusive), elementwise; (N,) bool."""
    return (np.asarray(frequency) >= min_pair_frequency) & (
        np.asarray(proportion) >= min_pair_proportion
    )


def is_accepted(
    frequency: np.ndarray | pa.Array | pa.ChunkedArray,
    proportion: np.ndarray | pa.Array | pa.ChunkedArray,
    isa: np.ndarray | pa.Array | pa.ChunkedArray,
    min_pair_frequency: float,
    min_pair_proportion: float,
) -> np.ndarray:
    """The acceptance rule of a label pair: it passes both thresholds and is not an is-a pair
    (one label a Subcategory of the other); (N,) bool. The one place the rule is written:
    statistics, the run record and the audit's threshold grid all call it."""
    thresholds = passes_thresholds(frequency, proportion, min_pair_frequency, min_pair_proportion)
    return thresholds & ~np.asarray(isa, dtype=bool)


def _pair_keys(parent: pa.ChunkedArray | pa.Array, child: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One string per row, "P\\x1fC", so a label pair can be matched with a single is_in."""
    return pc.binary_join_element_wise(parent, child, _KEY_SEPARATOR)


def _key_set(label_pairs: Collection[tuple[str, str]]) -> pa.Array:
    return pa.array([_KEY_SEPARATOR.join(pair) for pair in label_pairs], pa.string())


def pair_counts(candidates: pa.Table) -> pa.Table:
    """Per (parent_label, child_label): candidate box pairs and parent boxes that have such a child.

    Args:
        candidates: schemas.PAIRS of the stats split; rows of kind other than "box_box"
            (image ⊃ box) are ignored.
    Returns:
        schemas.PAIR_COUNTS sorted by (parent_label, child_label). frequency counts box pairs;
        parents_with_child counts distinct parent boxes (split, image_id, parent_box) of label
        P with at least one candidate child of label C. Both sum across disjoint batches of
        images, so partial tables can be added up.
    """
    box_box = candidates.filter(pc.equal(candidates.column("kind"), "box_box"))
    # One row per (label pair, parent box) with its number of children, then one per label pair.
    per_parent = box_box.group_by([*_LABEL_PAIR, "split", "image_id", "parent_box"]).aggregate(
        [("child_box", "count")]
    )
    counts = per_parent.group_by(_LABEL_PAIR).aggregate(
        [("child_box_count", "sum"), ("parent_box", "count")]
    )
    table = pa.table(
        [
            counts.column("parent_label"),
            counts.column("child_label"),
            counts.column("child_box_count_sum"),
            counts.column("parent_box_count"),
        ],
        schema=PAIR_COUNTS,
    )
    return table.sort_by([(name, "ascending") for name in _LABEL_PAIR])


def label_counts(boxes: pa.Table) -> pa.Table:
    """Kept boxes per label: schemas.LABEL_COUNTS sorted by label (boxes: schemas.BOXES)."""
    kept = boxes.filter(boxes.column("kept"))
    counts = kept.group_by("label").aggregate([("kept", "count")])
    table = pa.table([counts.column("label"), counts.column("kept_count")], schema=LABEL_COUNTS)
    return table.sort_by("label")


def _sum_by(table: pa.Table, keys: list[str], values: list[str]) -> pa.Table:
    """Sum `values` over rows with equal `keys`, keeping the column names."""
    summed = table.group_by(keys).aggregate([(name, "sum") for name in values])
    # group_by names an aggregate "{column}_sum"; give it back its column name.
    return summed.rename_columns([name.removesuffix("_sum") for name in summed.column_names])


def in_splits(table: pa.Table, splits: Collection[str]) -> pa.Table:
    """The rows of `table` (any table with a "split" column) whose split is in `splits`."""
    return table.filter(pc.is_in(table.column("split"), value_set=pa.array(splits, pa.string())))


def _canonical(table: pa.Table, schema: pa.Schema, values: list[str]) -> pa.Table:
    """One row per key (the schema's other columns), values summed, sorted by key."""
    keys = [name for name in schema.names if name not in values]
    summed = _sum_by(table, keys, values).select(schema.names).cast(schema)
    return summed.sort_by([(name, "ascending") for name in keys])


@dataclass(frozen=True)
class LabelPairCounts:
    """The additive part of the label-pair statistics of a set of images.

    `pairs` is schemas.PAIR_COUNTS (frequency, parents_with_child per label pair) and `labels`
    is schemas.LABEL_COUNTS (kept boxes per label), each with one row per key, sorted. Counts
    of disjoint sets of images add up (`a + b`, `LabelPairCounts.merge`), and `to_label_pairs`
    turns the total into the statistics table.
    """

    pairs: pa.Table
    labels: pa.Table

    @classmethod
    def of_images(
        cls, boxes: pa.Table, candidates: pa.Table, splits: Collection[str] | None = None
    ) -> "LabelPairCounts":
        """Counts of some whole images.

        Args:
            boxes: schemas.BOXES of whole images (every box of each image present).
            candidates: schemas.PAIRS box ⊃ box candidates of the same images.
            splits: count only these splits (the stats splits); None counts every split.
        """
        if splits is not None:
            boxes, candidates = in_splits(boxes, splits), in_splits(candidates, splits)
        return cls(pair_counts(candidates), label_counts(boxes))

    @classmethod
    def merge(cls, parts: Iterable["LabelPairCounts"]) -> "LabelPairCounts":
        """The sum of any number of counts (none gives empty counts), in one pass."""
        parts = list(parts)
        pairs = pa.concat_tables([PAIR_COUNTS.empty_table(), *(part.pairs for part in parts)])
        labels = pa.concat_tables([LABEL_COUNTS.empty_table(), *(part.labels for part in parts)])
        return cls(
            _canonical(pairs, PAIR_COUNTS, ["frequency", "parents_with_child"]),
            _canonical(labels, LABEL_COUNTS, ["kept_boxes"]),
        )

    def __add__(self, other: "LabelPairCounts") -> "LabelPairCounts":
        return LabelPairCounts.merge([self, other])

    def to_label_pairs(
        self,
        names: Mapping[str, str],
        min_pair_frequency: int,
        min_pair_proportion: float,
        isa_pairs: Collection[tuple[str, str]] = (),
    ) -> pa.Table:
        """schemas.LABEL_PAIRS of these counts: see label_pair_stats for the arguments."""
        return label_pair_stats(
            self.pairs, self.labels, names, min_pair_frequency, min_pair_proportion, isa_pairs
        )


def _display_names(labels: pa.ChunkedArray, names: Mapping[str, str]) -> pa.Array:
    """Display name of each label id, or the id itself when `names` lacks it."""
    ids = pa.array(list(names.keys()), pa.string())
    found = pc.index_in(labels, value_set=ids)
    return pc.coalesce(pa.array(list(names.values()), pa.string()).take(found), labels)


def label_pair_stats(
    pair_counts: pa.Table,
    label_counts: pa.Table,
    names: Mapping[str, str],
    min_pair_frequency: int = 50,
    min_pair_proportion: float = 0.1,
    isa_pairs: Collection[tuple[str, str]] = (),
) -> pa.Table:
    """Statistics and acceptance of every label pair (DESIGN, "Label-pair statistics").

    Args:
        pair_counts: schemas.PAIR_COUNTS, possibly several partial tables concatenated (the
            same label pair on many rows); rows are summed first.
        label_counts: schemas.LABEL_COUNTS, likewise summed per label first. Every parent
            label of pair_counts must appear here.
        names: label id -> display name; ids missing from it are shown as themselves.
        min_pair_frequency: accepted only with frequency >= this (inclusive).
        min_pair_proportion: ... and proportion >= this (inclusive).
        isa_pairs: (A, B) label pairs related by Subcategory; (P, C) is never accepted when
            (P, C) or (C, P) is among them.
    Returns:
        schemas.LABEL_PAIRS sorted by (parent_label, child_label), with
        proportion = parents_with_child / parent_boxes (kept boxes of label P).
    """
    pairs = _sum_by(pair_counts, _LABEL_PAIR, ["frequency", "parents_with_child"])
    labels = _sum_by(label_counts, ["label"], ["kept_boxes"])
    pairs = pairs.join(labels, keys="parent_label", right_keys="label", join_type="left outer")
    pairs = pairs.sort_by([(name, "ascending") for name in _LABEL_PAIR])
    parent_boxes = pairs.column("kept_boxes")
    if parent_boxes.null_count:
        missing = pc.unique(pairs.column("parent_label").filter(pc.is_null(parent_boxes)))
        raise ValueError(f"label_counts lacks parent labels {missing.to_pylist()[:10]}")
    parent, child = pairs.column("parent_label"), pairs.column("child_label")
    frequency = pairs.column("frequency")
    parents_with_child = pairs.column("parents_with_child")
    proportion = pc.divide(pc.cast(parents_with_child, pa.float64()), parent_boxes)
    related = _key_set(isa_pairs)
    isa = pc.or_(
        pc.is_in(_pair_keys(parent, child), value_set=related),
        pc.is_in(_pair_keys(child, parent), value_set=related),
    )
    accepted = pa.array(
        is_accepted(frequency, proportion, isa, min_pair_frequency, min_pair_proportion),
        pa.bool_(),
    )
    columns = [
        parent,
        child,
        _display_names(parent, names),
        _display_names(child, names),
        frequency,
        parents_with_child,
        parent_boxes,
        proportion,
        isa,
        accepted,
    ]
    return pa.table(columns, schema=LABEL_PAIRS)


def accepted_label_pairs(label_pairs: pa.Table) -> frozenset[tuple[str, str]]:
    """The (parent_label, child_label) pairs marked accepted in a schemas.LABEL_PAIRS table."""
    accepted = label_pairs.filter(label_pairs.column("accepted"))
    return frozenset(
        zip(
            accepted.column("parent_label").to_pylist(),
            accepted.column("child_label").to_pylist(),
            strict=True,
        )
    )


def filter_accepted(candidates: pa.Table, accepted: Collection[tuple[str, str]]) -> pa.Table:
    """Rows of schemas.PAIRS whose (parent_label, child_label) is accepted, in their order.

    Rows with a null parent_label (image ⊃ box) never match.
    """
    keys = _pair_keys(candidates.column("parent_label"), candidates.column("child_label"))
    keep = pc.fill_null(pc.is_in(keys, value_set=_key_set(accepted)), False)
    return candidates.filter(keep)


def isa_blocked_pairs(
    label_pairs: pa.Table, min_pair_frequency: int, min_pair_proportion: float
) -> list[tuple[str, str]]:
    """The (parent_label, child_label) pairs of a schemas.LABEL_PAIRS table that pass both
    thresholds but are refused as is-a pairs, in table order."""
    passing = passes_thresholds(
        label_pairs.column("frequency"),
        label_pairs.column("proportion"),
        min_pair_frequency,
        min_pair_proportion,
    )
    blocked = label_pairs.filter(pa.array(passing & np.asarray(label_pairs.column("isa"), bool)))
    return list(
        zip(
            blocked.column("parent_label").to_pylist(),
            blocked.column("child_label").to_pylist(),
            strict=True,
        )
    )


def label_pair_summary(label_pairs: pa.Table) -> dict[str, int]:
    """run.json's "label_pairs": candidate, accepted and is-a label pairs of a LABEL_PAIRS table."""
    return {
        "candidate_label_pairs": label_pairs.num_rows,
        "accepted_label_pairs": int(pc.sum(label_pairs.column("accepted")).as_py() or 0),
        "isa_label_pairs": int(pc.sum(label_pairs.column("isa")).as_py() or 0),
    }
