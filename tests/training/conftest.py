"""Shared training fixtures and helpers: one small pipeline run whose shards and trees the training,
evaluation and experiment tests read (built once per session, ~15 s).
"""

import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

TRAIN_IMAGES = 120
TRAIN_SHARDS = "train-{000000..000002}.tar"


def pair_ids(crops, parent_index, child_index) -> list:
    """(parent crop id, child crop id) of each pair of a batch or plan."""
    parents, children = np.asarray(parent_index).tolist(), np.asarray(child_index).tolist()
    return [(crops[p], crops[c]) for p, c in zip(parents, children, strict=True)]


@dataclass(frozen=True)
class TinyRun:
    """A pipeline output root from 120/20/20 synthetic images, 40 samples per shard."""

    output: Path  # shards/{train,validation,test}/, trees/, tables/
    train_images: int = TRAIN_IMAGES

    @property
    def train_dir(self) -> Path:
        """The train split's shard folder (3 shards)."""
        return self.output / "shards" / "train"

    @property
    def shards(self) -> str:
        """The train shards as a spec (brace range)."""
        return str(self.train_dir / TRAIN_SHARDS)

    @property
    def trees(self) -> Path:
        return self.output / "trees"


def build_tiny_run(root: Path) -> TinyRun:
    """Run the pipeline on 120/20/20 synthetic images under ``root``."""
    # Imported here: Beam is slow to import and DDP child processes must not need it.
    from hierdata.synth import write_synthetic_dataset, write_synthetic_images
    from pipelines.build_hier_openimages import main as build_main

    sizes = {"train": TRAIN_IMAGES, "validation": 20, "test": 20}
    source, output = str(root / "input"), str(root / "output")
    write_synthetic_dataset(source, sizes, seed=1)
    write_synthetic_images(source, sizes, seed=1)
    argv = ["--input", source, "--output", output, "--min_pair_frequency", "5",
            "--samples_per_shard", "40"]  # fmt: skip
    assert build_main(argv) == 0
    return TinyRun(Path(output))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """The shared run: read it, never write into it (copy it to write)."""
    return build_tiny_run(tmp_path_factory.mktemp("tiny_run"))


@pytest.fixture
def no_network(monkeypatch):
    """Weights come only from local files: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise OSError("encoder tests must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
