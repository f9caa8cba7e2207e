"""Shared evaluation fixtures: a small hand-made label tree."""

import networkx as nx
import pytest

from hierdata.trees import ROOT


@pytest.fixture
def small_tree() -> nx.DiGraph:
    """scene -> {car -> {wheel -> {tyre}, door}, person -> {hand}}."""
    tree = nx.DiGraph(root=ROOT)
    tree.add_edges_from(
        [
            (ROOT, "person"),
            (ROOT, "car"),
            ("car", "wheel"),
            ("car", "door"),
            ("wheel", "tyre"),
            ("person", "hand"),
        ]
    )
    return tree
