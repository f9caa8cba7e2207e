"""Shared evaluation fixtures and helpers: a small hand-made label tree, box metadata, and a
perfect hierarchical embedding of crops of that tree."""

import networkx as nx
import pytest
import torch

from hierdata.trees import ROOT
from training.eval.labels import LabelIndex
from training.eval.metrics import Relevance


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


# Child crops of the small tree (scene -> car -> {door, wheel -> tyre}, person -> hand).
CROP_LABELS = ["car", "car", "wheel", "wheel", "wheel", "door", "person", "person", "hand", "hand"]
IMAGE_LABELS = [["car", "wheel", "door"], ["person", "hand"]]


def perfect_embedding() -> tuple[torch.Tensor, torch.Tensor]:
    """Images near the origin on their branch's ray; their crops further out on the same ray.

    Returns (images (2, D), crops (10, D)) Lorentz space components: a perfect hierarchical
    embedding of IMAGE_LABELS and CROP_LABELS.
    """
    dim = 2 + len(CROP_LABELS)
    axis = torch.eye(dim, dtype=torch.float64)
    branch = {"car": 0, "wheel": 0, "door": 0, "person": 1, "hand": 1}
    images = torch.stack([0.3 * axis[0], 0.3 * axis[1]])
    crops = torch.stack(
        [2.0 * axis[branch[label]] + 0.05 * axis[2 + i] for i, label in enumerate(CROP_LABELS)]
    )
    return images, crops


def relevances(small_tree) -> tuple[Relevance, Relevance]:
    """(parent -> child, child -> parent) ground truth of IMAGE_LABELS and CROP_LABELS."""
    index = LabelIndex.from_tree(small_tree)
    parents, children = index.multi_hot(IMAGE_LABELS), index.encode(CROP_LABELS)
    return (
        Relevance.parent_to_child(index, parents, children),
        Relevance.child_to_parent(index, children, parents),
    )
