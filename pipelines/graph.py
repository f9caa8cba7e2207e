"""The pipeline graph: annotation stages, then trees, cross-image pairs and shards.

read -> validate -> bucket by image -> mine -> CombinePerKey statistics -> accepted pairs (side
input) -> filter, trees, cross-image -> decode once per image -> assemble -> shards.
"""

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hierdata import cross_image, io, isa, readers, runinfo, shards, stats, trees
from pipelines import shard_stages, stages
from pipelines.options import MiningConfig
from schemas import REJECTS, OutputLayout

AsSingleton = beam.pvalue.AsSingleton


def write_table(pcoll, root: str, table: str, label: str | None = None):
    """(part, pa.Table) elements -> OUTPUT/tables/{table}/part-{part}.parquet."""
    return pcoll | (label or f"Write {table}") >> beam.ParDo(stages.WriteTable(root, table))


def build(pipeline: beam.Pipeline, launch, run_record: dict) -> None:
    """Add every stage to `pipeline` (launch: the launcher's LaunchPlan)."""
    config: MiningConfig = launch.config
    root = config.output
    chunks = pipeline | "Chunks" >> beam.Create(launch.chunks) | "Spread chunks" >> beam.Reshuffle()
    line_counts = chunks | "Count lines" >> beam.Map(
        lambda c: ((c.url, c.index), readers.count_lines(c))
    )
    read = chunks | "Read and validate" >> beam.ParDo(
        stages.ReadChunk(launch.headers, frozenset(launch.names)),
        line_counts=beam.pvalue.AsDict(line_counts),
    ).with_outputs(stages.REJECTS, stages.COUNTS, main="rows")
    write_table(read[stages.REJECTS], root, "rejects")

    mined = (
        read.rows
        | "Key by image bucket" >> beam.ParDo(stages.KeyByImageBucket(launch.n_buckets))
        | "Group images" >> beam.GroupByKey()
        | "Mine"
        >> beam.ParDo(
            stages.MineBucket(
                config.min_box_area, config.containment, config.duplicate_iou, config.stats_splits
            )
        ).with_outputs(stages.COUNTS, stages.PARENT_STATS, main="buckets")
    )
    write_table(mined.buckets | "Boxes" >> beam.Map(lambda e: (e[0], e[1]["boxes"])), root, "boxes")
    write_table(
        mined.buckets
        | "Candidates"
        >> beam.FlatMap(
            lambda e: [(e[0], e[1]["candidates"])] if e[1]["candidates"].num_rows else []
        ),
        root,
        "candidates",
    )

    # At most 600 parent labels with 600 children each: one table on one worker is a few MB.
    per_parent = (
        mined[stages.PARENT_STATS]
        | "Sum label pairs" >> beam.CombinePerKey(stages.SumParentStats())
        | "Collect label pairs" >> beam.combiners.ToList()
    )
    isa_pairs = isa.isa_pairs(launch.hierarchy) if config.isa_guard else frozenset()
    label_pairs = per_parent | "Label-pair statistics" >> beam.Map(
        _label_pair_table, launch.names, config, isa_pairs
    )
    write_table(
        label_pairs | "Name label_pairs" >> beam.Map(lambda t: ("00000", t)), root, "label_pairs"
    )
    accepted = label_pairs | "Accepted keys" >> beam.Map(stats.accepted_label_pairs)
    tree_summary = label_pairs | "Label tree" >> beam.Map(
        _write_label_tree, AsSingleton(per_parent), launch.names, root
    )
    agreement = label_pairs | "Official hierarchy" >> beam.Map(_agreement, launch.hierarchy, config)

    # Bottom-k reservoirs merge the same way whatever the bundling: ~40 MB per split at most.
    reservoirs = (
        mined.buckets
        | "Bucket reservoirs"
        >> beam.FlatMap(
            lambda e, pool, seed: [
                ((r.split, r.label), r)
                for r in cross_image.bucket_reservoirs(e[1]["boxes"], pool, seed)
            ],
            config.cross_image_pool,
            config.seed,
        )
        | "Merge reservoirs"
        >> beam.CombinePerKey(shard_stages.MergeReservoirs(config.cross_image_pool))
        | "Reservoirs" >> beam.Values()
        | "Collect reservoirs" >> beam.combiners.ToList()
        | "Reservoir table" >> beam.Map(cross_image.reservoirs_to_table)
    )
    finished = mined.buckets | "Finish buckets" >> beam.ParDo(
        shard_stages.FinishBucket(
            config.cross_image_samples, config.seed, plan_samples=not config.skip_images
        ),
        accepted=AsSingleton(accepted),
        reservoir_table=AsSingleton(reservoirs),
    ).with_outputs(
        shard_stages.PAIRS_OUT,
        shard_stages.TREES_OUT,
        shard_stages.CROSS_OUT,
        shard_stages.PLANS,
        shard_stages.COUNTS,
    )
    for table in ("pairs", "image_trees", "cross_pairs"):
        write_table(finished[table], root, table)

    counts = (
        (read[stages.COUNTS], mined[stages.COUNTS], finished[shard_stages.COUNTS])
        | "All counts" >> beam.Flatten()
        | "Sum counts" >> beam.CombineGlobally(runinfo.merge_all)
    )
    extra = {
        "label_pairs": label_pairs | "Summarise label pairs" >> beam.Map(_label_summary),
        "label_tree": tree_summary,
        "official_hierarchy": agreement,
    }
    if not config.skip_images:
        extra.update(_image_stages(finished[shard_stages.PLANS], counts, config))
    (
        pipeline
        | "Run record" >> beam.Create([None])
        | "Write run.json"
        >> beam.Map(
            _write_run_record,
            AsSingleton(counts),
            run_record,
            config,
            **{name: AsSingleton(pcoll) for name, pcoll in extra.items()},
        )
    )


def _image_stages(plans, counts, config: MiningConfig) -> dict:
    """Decode once per image, deliver cross-image crops by key, write shards and sizes.json."""
    root = config.output
    n_shards = counts | "Shard counts" >> beam.Map(
        lambda c, per_shard: {
            split: shards.shard_count(n, per_shard)
            for split, n in c.get("samples_planned", {}).items()
        },
        config.samples_per_shard,
    )
    decoded = (
        plans
        | "Group plans and requests" >> beam.GroupByKey()
        | "Decode and crop"
        >> beam.ParDo(
            shard_stages.DecodeAndCrop(
                config.images, config.input, config.crop_size, config.jpeg_quality
            )
        ).with_outputs(shard_stages.REJECTS, main="crops")
    )
    image_rejects = (
        decoded[shard_stages.REJECTS] | "Collect image rejects" >> beam.combiners.ToList()
    )
    write_table(
        image_rejects
        | "Image reject table"
        >> beam.Map(lambda rows: ("images", pa.Table.from_pylist(rows, schema=REJECTS))),
        root,
        "rejects",
        label="Write image rejects",
    )
    shard_summary = (
        decoded.crops
        | "Group crops by image" >> beam.GroupByKey()
        | "Assemble samples"
        >> beam.ParDo(shard_stages.AssembleSample(), n_shards=AsSingleton(n_shards))
        | "Group samples by shard" >> beam.GroupByKey()
        | "Write shards" >> beam.ParDo(shard_stages.WriteShard(root))
        | "Group markers by split" >> beam.GroupByKey()
        | "Write sizes.json" >> beam.Map(shard_stages.write_sizes, root)
        | "Shards per split" >> beam.combiners.ToDict()
    )
    return {
        "shards": shard_summary,
        "image_rejects": image_rejects
        | "Summarise image rejects" >> beam.Map(_image_reject_summary),
    }


def _label_pair_table(per_parent, names, config: MiningConfig, isa_pairs) -> pa.Table:
    rows = [
        (parent, child, frequency, with_child)
        for parent, (_, children) in per_parent
        for child, (frequency, with_child) in children.items()
    ]
    parent, child, frequency, with_child = zip(*rows, strict=True) if rows else ((),) * 4
    partial = pa.table(
        {
            "parent_label": pa.array(parent, pa.string()),
            "child_label": pa.array(child, pa.string()),
            "frequency": pa.array(frequency, pa.int64()),
            "parents_with_child": pa.array(with_child, pa.int64()),
        }
    )
    labels = pa.table(
        {
            "label": pa.array([p for p, _ in per_parent], pa.string()),
            "kept_boxes": pa.array([kept for _, (kept, _) in per_parent], pa.int64()),
        }
    )
    return stats.label_pair_stats(
        partial, labels, names, config.min_pair_frequency, config.min_pair_proportion, isa_pairs
    )


def _write_label_tree(label_pairs: pa.Table, per_parent, names, root: str) -> dict:
    """trees/label_tree.json (node-link) and trees/label_tree.parquet; returns a summary."""
    tree = trees.label_tree(label_pairs, {label: kept for label, (kept, _) in per_parent})
    for label, attrs in tree.nodes(data=True):
        if label != trees.ROOT:
            attrs["name"] = names.get(label, attrs.get("name", label))
    layout = OutputLayout(root)
    io.write_json(layout.label_tree_json, trees.tree_node_link(tree))
    buffer = pa.BufferOutputStream()
    pq.write_table(trees.label_tree_table(tree), buffer, compression="zstd")
    io.write_bytes(layout.label_tree_parquet, buffer.getvalue().to_pybytes())
    depths = [d for _, d in tree.nodes(data="depth")]
    return {
        "labels": tree.number_of_nodes() - 1,
        "edges": tree.number_of_edges(),
        "max_depth": max(depths, default=0),
        "under_root": tree.out_degree(trees.ROOT) if trees.ROOT in tree else 0,
    }


def _agreement(label_pairs: pa.Table, hierarchy, config: MiningConfig) -> dict | None:
    if not hierarchy:
        return None
    passing = pc.and_(
        pc.greater_equal(label_pairs["frequency"], config.min_pair_frequency),
        pc.greater_equal(label_pairs["proportion"], config.min_pair_proportion),
    )
    blocked = label_pairs.filter(pc.and_(passing, label_pairs["isa"]))
    isa_blocked = list(
        zip(blocked["parent_label"].to_pylist(), blocked["child_label"].to_pylist(), strict=True)
    )
    return isa.official_part_agreement(
        stats.accepted_label_pairs(label_pairs), hierarchy, isa_blocked
    )


def _label_summary(table: pa.Table) -> dict:
    return {
        "candidate_label_pairs": table.num_rows,
        "accepted_label_pairs": int(pc.sum(table["accepted"]).as_py() or 0),
        "isa_label_pairs": int(pc.sum(table["isa"]).as_py() or 0),
    }


def _image_reject_summary(rows: list[dict]) -> dict:
    summary: dict[str, dict[str, int]] = {}
    for row in rows:
        per_split = summary.setdefault(row["split"], {})
        per_split[row["reason"]] = per_split.get(row["reason"], 0) + 1
    return summary


def _write_run_record(_, counts: dict, run_record: dict, config: MiningConfig, **extra) -> None:
    record = dict(run_record, counts=counts, finished_at=runinfo.now(), **extra)
    record["elapsed_seconds"] = round(runinfo.time_since(run_record["started_epoch"]), 3)
    run_json = OutputLayout(config.output).run_json
    try:
        runinfo.check_reject_bound(counts, config.max_reject_fraction)
    except runinfo.RejectBoundExceeded as err:
        io.write_json(run_json, dict(record, status="failed", error=str(err)))
        raise
    io.write_json(run_json, dict(record, status="succeeded"))
