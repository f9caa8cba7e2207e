"""Shared evaluation fixtures and helpers: a small hand-made label tree, box metadata."""

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


def box_metadata(key: str, box_id: int, label: str, area: float, parent: str = "img") -> dict:
    """A full-height box of width ``area`` (normalised), so its area fraction is ``area``."""
    return {
        "key": key,
        "box_id": box_id,
        "label": label,
        "xmin": 0.0,
        "xmax": area,
        "ymin": 0.0,
        "ymax": 1.0,
        "is_group_of": 0,
        "tree_parent": parent,
    }
