"""Label-pair statistics: how often label P contains label C, how much their boxes overlap, and
which pairs are accepted.

Counts are additive: `LabelPairCounts` of disjoint batches of images sum to the counts of the
whole, so any runner can combine them in any grouping.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hierdata import iou_histograms
from schemas import LABEL_COUNTS, LABEL_PAIRS, PAIR_COUNTS, PAIR_IOU_COUNTS

_KEY_SEPARATOR = "\x1f"  # ASCII unit separator: never part of a label id
_LABEL_PAIR = ["parent_label", "child_label"]
_ArrayLike = np.ndarray | pa.Array | pa.ChunkedArray


def passes_thresholds(
    frequency: _ArrayLike,
    proportion: _ArrayLike,
    min_pair_frequency: float,
    min_pair_proportion: float,
) -> np.ndarray:
    """The DESIGN threshold rule: ``frequency >= min_pair_frequency`` and ``proportion >=
    min_pair_proportion`` (both inclusive), elementwise; (N,) bool."""
    return (np.asarray(frequency) >= min_pair_frequency) & (
        np.asarray(proportion) >= min_pair_proportion
    )


def is_same_object(iou_median: _ArrayLike, same_object_iou: float) -> np.ndarray:
    """The same-object rule: a label pair whose candidate box pairs have a median IoU at or
    above ``same_object_iou`` (inclusive) names one object under two labels (Tire/Wheel 0.82,
    Woman/Girl 0.74 on Open Images V3), not a whole and its part (Head/Face 0.53, Car/Wheel
    0.03); (N,) bool. A value above 1 disables the rule."""
    return np.asarray(iou_median, dtype=np.float64) >= same_object_iou


def is_accepted(
    frequency: _ArrayLike,
    proportion: _ArrayLike,
    isa: _ArrayLike,
    same_object: _ArrayLike,
    min_pair_frequency: float,
    min_pair_proportion: float,
) -> np.ndarray:
    """The acceptance rule of a label pair: it passes both thresholds, is not an is-a pair (one
    label a Subcategory of the other) and is not one object under two labels (is_same_object);
    (N,) bool. The one place the rule is written: statistics, the run record and the audit's
    threshold grid all call it."""
    thresholds = passes_thresholds(frequency, proportion, min_pair_frequency, min_pair_proportion)
    return thresholds & ~np.asarray(isa, dtype=bool) & ~np.asarray(same_object, dtype=bool)


def _pair_keys(parent: pa.ChunkedArray | pa.Array, child: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One string per row, "P\\x1fC", so a label pair can be matched with a single is_in."""
    return pc.binary_join_element_wise(parent, child, _KEY_SEPARATOR)


def _key_set(label_pairs: Collection[tuple[str, str]]) -> pa.Array:
    return pa.array([_KEY_SEPARATOR.join(pair) for pair in label_pairs], pa.string())


def pair_counts(candidates: pa.Table) -> pa.Table:
    """Per (parent_label, child_label): candidate box pairs, parent boxes that have such a child
    and child boxes that have such a parent.

    Args:
        candidates: schemas.PAIRS of the stats split; rows of kind other than "box_box"
            (image ⊃ box) are ignored.
    Returns:
        schemas.PAIR_COUNTS sorted by (parent_label, child_label). frequency counts box pairs;
        parents_with_child counts distinct parent boxes (split, image_id, parent_box) of label
        P with at least one candidate child of label C; children_with_parent counts distinct
        child boxes (split, image_id, child_box) of label C inside at least one box of label
        P as a candidate. All sum across disjoint batches of images, so partial tables can be
        added up.
    """
    box_box = candidates.filter(pc.equal(candidates.column("kind"), "box_box"))
    # One row per (label pair, parent box) with its number of children, then one per label pair.
    per_parent = box_box.group_by([*_LABEL_PAIR, "split", "image_id", "parent_box"]).aggregate(
        [("child_box", "count")]
    )
    counts = per_parent.group_by(_LABEL_PAIR).aggregate(
        [("child_box_count", "sum"), ("parent_box", "count")]
    )
    per_child = box_box.group_by([*_LABEL_PAIR, "split", "image_id", "child_box"]).aggregate([])
    children = per_child.group_by(_LABEL_PAIR).aggregate([([], "count_all")])
    counts = counts.join(children, keys=_LABEL_PAIR)
    table = pa.table(
        [
            counts.column("parent_label"),
            counts.column("child_label"),
            counts.column("child_box_count_sum"),
            counts.column("parent_box_count"),
            counts.column("count_all"),
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

    `pairs` is schemas.PAIR_COUNTS (frequency, parents_with_child, children_with_parent per
    label pair), `labels` schemas.LABEL_COUNTS (kept boxes per label) and `ious`
    schemas.PAIR_IOU_COUNTS (the IoU histogram of each label pair's candidates), each with one
    row per key, sorted. Counts of disjoint sets of images add up (`a + b`,
    `LabelPairCounts.merge`), and `to_label_pairs` turns the total into the statistics table.
    """

    pairs: pa.Table
    labels: pa.Table
    ious: pa.Table

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
        return cls(
            pair_counts(candidates), label_counts(boxes), iou_histograms.iou_counts(candidates)
        )

    @classmethod
    def merge(cls, parts: Iterable["LabelPairCounts"]) -> "LabelPairCounts":
        """The sum of any number of counts (none gives empty counts), in one pass."""
        parts = list(parts)
        tables = {}
        for field, schema, values in (
            ("pairs", PAIR_COUNTS, ["frequency", "parents_with_child", "children_with_parent"]),
            ("labels", LABEL_COUNTS, ["kept_boxes"]),
            ("ious", PAIR_IOU_COUNTS, ["pairs"]),
        ):
            stacked = pa.concat_tables(
                [schema.empty_table(), *(getattr(part, field) for part in parts)]
            )
            tables[field] = _canonical(stacked, schema, values)
        return cls(**tables)

    def __add__(self, other: "LabelPairCounts") -> "LabelPairCounts":
        return LabelPairCounts.merge([self, other])

    def to_label_pairs(
        self,
        names: Mapping[str, str],
        min_pair_frequency: int,
        min_pair_proportion: float,
        same_object_iou: float,
        isa_pairs: Collection[tuple[str, str]] = (),
    ) -> pa.Table:
        """schemas.LABEL_PAIRS of these counts: see label_pair_stats for the arguments."""
        return label_pair_stats(
            self,
            names,
            min_pair_frequency=min_pair_frequency,
            min_pair_proportion=min_pair_proportion,
            same_object_iou=same_object_iou,
            isa_pairs=isa_pairs,
        )


def _display_names(labels: pa.ChunkedArray, names: Mapping[str, str]) -> pa.Array:
    """Display name of each label id, or the id itself when `names` lacks it."""
    ids = pa.array(list(names.keys()), pa.string())
    found = pc.index_in(labels, value_set=ids)
    return pc.coalesce(pa.array(list(names.values()), pa.string()).take(found), labels)


def _join_or_fail(pairs: pa.Table, other: pa.Table, key: str, right_key: str, what: str):
    """Left join on one key; a pair without a match is an error naming the first few keys."""
    joined = pairs.join(other, keys=key, right_keys=right_key, join_type="left outer")
    missing_rows = pc.is_null(joined.column(other.column_names[-1]))
    if pc.any(missing_rows).as_py():
        missing = pc.unique(joined.column(key).filter(missing_rows))
        raise ValueError(f"{what} lacks {key}s {missing.to_pylist()[:10]}")
    return joined


def label_pair_stats(
    counts: LabelPairCounts,
    names: Mapping[str, str],
    min_pair_frequency: int = 50,
    min_pair_proportion: float = 0.1,
    same_object_iou: float = 0.7,
    isa_pairs: Collection[tuple[str, str]] = (),
) -> pa.Table:
    """Statistics and acceptance of every label pair (DESIGN "Label-pair statistics").

    Args:
        counts: the summed counts; its tables may hold several rows per key (partial tables
            concatenated): they are summed first. Every parent and child label of `pairs` must
            appear in `labels`, and every label pair in `ious`.
        names: label id -> display name; ids missing from it are shown as themselves.
        min_pair_frequency: accepted only with frequency >= this (inclusive).
        min_pair_proportion: ... and proportion >= this (inclusive).
        same_object_iou: ... and iou_median < this (is_same_object; above 1 disables).
        isa_pairs: (A, B) label pairs related by Subcategory; (P, C) is never accepted when
            (P, C) or (C, P) is among them.
    Returns:
        schemas.LABEL_PAIRS sorted by (parent_label, child_label), with
        proportion = parents_with_child / parent_boxes (kept boxes of label P), child_boxes the
        kept boxes of label C, and the IoU summary of iou_histograms.summarise.
    """
    summed = LabelPairCounts.merge([counts])
    labels = summed.labels.rename_columns(["label", "parent_boxes"])
    pairs = _join_or_fail(summed.pairs, labels, "parent_label", "label", "label_counts")
    labels = summed.labels.rename_columns(["label", "child_boxes"])
    pairs = _join_or_fail(pairs, labels, "child_label", "label", "label_counts")
    overlap = iou_histograms.summarise(summed.ious)
    pairs = pairs.join(overlap, keys=_LABEL_PAIR, join_type="left outer")
    if pairs.column("iou_median").null_count:
        raise ValueError("the IoU counts lack label pairs of the pair counts")
    pairs = pairs.sort_by([(name, "ascending") for name in _LABEL_PAIR])
    parent, child = pairs.column("parent_label"), pairs.column("child_label")
    frequency = pairs.column("frequency")
    parents_with_child = pairs.column("parents_with_child")
    proportion = pc.divide(pc.cast(parents_with_child, pa.float64()), pairs.column("parent_boxes"))
    related = _key_set(isa_pairs)
    isa = pc.or_(
        pc.is_in(_pair_keys(parent, child), value_set=related),
        pc.is_in(_pair_keys(child, parent), value_set=related),
    )
    same_object = is_same_object(pairs.column("iou_median"), same_object_iou)
    accepted = is_accepted(
        frequency, proportion, isa, same_object, min_pair_frequency, min_pair_proportion
    )
    columns = [
        parent,
        child,
        _display_names(parent, names),
        _display_names(child, names),
        frequency,
        parents_with_child,
        pairs.column("parent_boxes"),
        proportion,
        pairs.column("children_with_parent"),
        pairs.column("child_boxes"),
        pairs.column("iou_median"),
        pairs.column("near_duplicate_share"),
        isa,
        pa.array(same_object, pa.bool_()),
        pa.array(accepted, pa.bool_()),
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


def _passing_pairs(
    label_pairs: pa.Table, blocked: np.ndarray, min_pair_frequency: int, min_pair_proportion: float
) -> list[tuple[str, str]]:
    """(parent_label, child_label) of the rows that pass both thresholds and where `blocked`."""
    passing = passes_thresholds(
        label_pairs.column("frequency"),
        label_pairs.column("proportion"),
        min_pair_frequency,
        min_pair_proportion,
    )
    rows = label_pairs.filter(pa.array(passing & blocked)).select(_LABEL_PAIR)
    return [(row["parent_label"], row["child_label"]) for row in rows.to_pylist()]


def isa_blocked_pairs(
    label_pairs: pa.Table, min_pair_frequency: int, min_pair_proportion: float
) -> list[tuple[str, str]]:
    """The (parent_label, child_label) pairs of a schemas.LABEL_PAIRS table that pass both
    thresholds but are refused as is-a pairs, in table order."""
    isa = np.asarray(label_pairs.column("isa"), bool)
    return _passing_pairs(label_pairs, isa, min_pair_frequency, min_pair_proportion)


def same_object_pairs(
    label_pairs: pa.Table, min_pair_frequency: int, min_pair_proportion: float
) -> list[tuple[str, str]]:
    """The pairs of a schemas.LABEL_PAIRS table that pass both thresholds, are not is-a, and
    are refused as one object under two labels only (the same-object filter's work)."""
    only_same_object = np.asarray(label_pairs.column("same_object"), bool) & ~np.asarray(
        label_pairs.column("isa"), bool
    )
    return _passing_pairs(label_pairs, only_same_object, min_pair_frequency, min_pair_proportion)


def label_pair_summary(
    label_pairs: pa.Table, min_pair_frequency: int, min_pair_proportion: float
) -> dict[str, int]:
    """run.json's "label_pairs" of a LABEL_PAIRS table: candidate, accepted, is-a and
    same-object label pairs, and those over both thresholds that the same-object filter
    refused (same_object_blocked)."""

    def total(column: str) -> int:
        return int(pc.sum(label_pairs.column(column)).as_py() or 0)

    blocked = same_object_pairs(label_pairs, min_pair_frequency, min_pair_proportion)
    return {
        "candidate_label_pairs": label_pairs.num_rows,
        "accepted_label_pairs": total("accepted"),
        "isa_label_pairs": total("isa"),
        "same_object_label_pairs": total("same_object"),
        "same_object_blocked": len(blocked),
    }
