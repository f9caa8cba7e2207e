"""What the launcher does before the graph is built: find the inputs (or write the synthetic
demo set), resolve the options, read the small files and cut the work into chunks and buckets.

It reads only headers, class descriptions and the hierarchy; workers read the CSVs in byte
ranges (see README "Scale").
"""

import logging
from collections.abc import Sequence

from hierdata import buckets, image_files, input_files, io, isa, readers, shards, synth
from hierdata.errors import InputError
from pipelines.config import RunConfig, resolve
from pipelines.options import HierOpenImagesOptions, check_values
from schemas import OutputLayout
from schemas.layout import TABLES

LOG = logging.getLogger("hier_openimages")
PROBED_IMAGES_PER_SPLIT = 8


class LaunchPlan:
    """What the launcher learns before building the graph: files, labels, chunks, buckets."""

    def __init__(self, config: RunConfig, inputs: input_files.InputFiles):
        self.config = config
        self.inputs = inputs
        self.names = input_files.read_class_descriptions(config.inputs.class_descriptions)
        hierarchy = config.inputs.hierarchy
        self.hierarchy = input_files.read_hierarchy(hierarchy) if hierarchy else []
        self.headers: dict[str, readers.Header] = {}
        self.chunks: list[readers.Chunk] = []
        total_bytes = 0
        for split in config.inputs.splits:
            url = inputs.bbox[split]
            header = readers.read_header(url)
            self.headers[url] = header
            self.chunks += readers.plan_chunks(url, split, header, config.execution.chunk_bytes)
            total_bytes += io.size(url)
        self.n_buckets = buckets.bucket_count(total_bytes, config.execution.bucket_bytes)

    def input_urls(self) -> list[str]:
        """Every input file the run reads, for the run record's fingerprints."""
        urls = [self.inputs.bbox[split] for split in self.config.inputs.splits]
        extra = (self.config.inputs.class_descriptions, self.config.inputs.hierarchy)
        return urls + [url for url in extra if url]


def plan(opts: HierOpenImagesOptions, dry_run: bool = False) -> LaunchPlan:
    """Check the options and the output, find the inputs (or write the synthetic set), read the
    small files, and probe a few images of each split.

    Args:
        dry_run: the run only builds the job: no output probe (it writes nothing) and no
            image probe (the graph is checked, not the data).
    Raises:
        InputError: a bad option value, an unwritable output, inputs that are missing or
            unreadable, or no image found where --images points.
    """
    check_values(opts)
    image_files.use_anonymous_s3(opts.s3_anonymous)
    if not dry_run:
        io.check_writable(opts.output)
    root = opts.input
    if root is None:
        root = OutputLayout(opts.output).synthetic_input
        LOG.info("no --input: writing the synthetic demo dataset to %s", root)
        synth.write_synthetic_dataset(root, seed=opts.seed)
        if not opts.skip_images:
            synth.write_synthetic_images(root, seed=opts.seed)
    inputs = input_files.find_inputs(root)
    class_descriptions = opts.class_descriptions or inputs.class_descriptions
    if class_descriptions is None:
        raise InputError(
            f"no class descriptions in {root} (looked for "
            f"{', '.join(input_files.CLASS_DESCRIPTION_NAMES)}); pass --class_descriptions"
        )
    hierarchy = opts.hierarchy or inputs.hierarchy
    config = resolve(opts, tuple(inputs.bbox), root, class_descriptions, hierarchy)
    launch = LaunchPlan(config, inputs)
    # A subset's images need not be among the CSV's first ids: no probe (missing ones are
    # still image_missing rejects under --max_image_reject_fraction).
    if not config.skip_images and not dry_run and not config.inputs.image_ids:
        probe_images(launch)
    return launch


def probe_images(launch: LaunchPlan) -> None:
    """Look for the images of the first PROBED_IMAGES_PER_SPLIT image ids of each split's CSV
    before any work starts: none found in a split is an InputError (the run would write no
    shard for it); some missing is a warning with the count.
    """
    inputs = launch.config.inputs
    checked, missing = 0, []
    for split in inputs.splits:
        url = launch.inputs.bbox[split]
        image_ids = readers.head_image_ids(url, launch.headers[url], PROBED_IMAGES_PER_SPLIT)
        if not image_ids:
            continue
        found = image_files.probe_split(
            inputs.images, inputs.input, split, image_ids, inputs.image_timeout
        )
        if len(found.missing) == len(found.checked):
            raise InputError(
                f"no image found for split {split} with --images {inputs.images!r}: "
                f"{found.missing[0]} is not a file (none of {len(found.checked)} probed was); "
                "fix --images or pass --skip_images"
            )
        checked += len(found.checked)
        missing += found.missing
    if missing:
        LOG.warning(
            "%d of %d probed images are not files (e.g. %s): such images become image_missing "
            "rejects",
            len(missing),
            checked,
            missing[0],
        )


def clear_outputs(layout: OutputLayout, shard_splits: Sequence[str] = ()) -> None:
    """Remove this run's tables and run.json first: a rerun must not mix in stale parts.

    Also removes the temporary files a killed run left beside the outputs, and the sizes.json
    of every split this run writes shards for: until the new one is written no index vouches
    for that split's shards (their tars stay, so an unchanged shard is not uploaded again;
    those the new sharding does not produce are swept once it is done).
    """
    for table in TABLES:
        io.remove_tree(layout.table_dir(table))
    io.remove_tree(layout.run_json)
    for folder in (layout.root, layout.trees_dir, *map(layout.shards_dir, shard_splits)):
        shards.remove_temporaries(folder)
    for split in shard_splits:
        io.remove_tree(layout.shard_sizes(split))


def warn_if_isa_guard_off(config: RunConfig) -> None:
    """One WARNING line when the is-a guard did not run; the entry point calls it as the run
    ends, so that a user error before then stays the only line on stderr."""
    if not config.mining.isa_guard:
        LOG.warning("is-a guard off: %s", isa.guard_off_reason(config.inputs.hierarchy))
