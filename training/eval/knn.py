"""kNN zero-shot classification: each query takes the majority label of its k nearest
candidates by cosine similarity (ImageFolder-style train/ candidates, val/ queries).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from hierdata.errors import InputError
from training.eval.embed import embed_files
from training.eval.models import EmbeddingModel
from training.eval.retrieval import iter_topk

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def majority_vote(neighbour_labels: np.ndarray) -> np.ndarray:
    """The most frequent label of each row; a tie goes to the label whose nearest neighbour
    ranks first (rows are sorted nearest first).

    Args:
        neighbour_labels: (M, k) int labels of each query's neighbours, nearest first.

    Returns:
        (M,) predicted labels.
    """
    votes = (neighbour_labels[:, :, None] == neighbour_labels[:, None, :]).sum(2)  # (M, k)
    # argmax takes the first maximum: among tied labels, the one seen nearest.
    return neighbour_labels[np.arange(len(votes)), votes.argmax(1)]


def knn_classify(
    train_emb: Tensor,
    train_labels: np.ndarray,
    val_emb: Tensor,
    k: int = 5,
    query_chunk: int = 1024,
) -> np.ndarray:
    """Predict val labels by a majority vote of the k train items with the highest cosine.

    Args:
        train_emb: (N, D) candidate embeddings; train_labels: (N,) int class ids.
        val_emb: (M, D) query embeddings.
        k: neighbours per query (at most N).

    Returns:
        (M,) predicted class ids.
    """
    train_labels = np.asarray(train_labels)
    predictions = [
        majority_vote(train_labels[indices.cpu().numpy()])
        for _, _, indices in iter_topk(val_emb, train_emb, k, "cosine", query_chunk=query_chunk)
    ]
    return np.concatenate(predictions)


def knn_accuracy(
    train_emb: Tensor, train_labels: np.ndarray, val_emb: Tensor, val_labels: np.ndarray, k: int = 5
) -> float:
    """Top-1 accuracy of knn_classify on labelled queries."""
    return float(
        (knn_classify(train_emb, train_labels, val_emb, k) == np.asarray(val_labels)).mean()
    )


@dataclass(frozen=True)
class KnnResult:
    """kNN accuracy on an image folder, with k (capped at the train images) and the counts."""

    folder: str
    k: int
    accuracy: float
    classes: int
    train_images: int
    val_images: int


def image_folder(root: Path) -> tuple[list[Path], list[str]]:
    """Image files under root/<class>/ (sorted) and their class names."""
    paths = sorted(p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return paths, [p.parent.name for p in paths]


def knn_metrics(
    model: EmbeddingModel, folder: str, k: int, batch_size: int = 256, workers: int = 4
) -> KnnResult:
    """kNN zero-shot classification: train/ candidates, val/ queries, top-k cosine vote.

    Raises InputError when either subfolder holds no class folders of images.
    """
    train_paths, train_names = image_folder(Path(folder) / "train")
    val_paths, val_names = image_folder(Path(folder) / "val")
    if not train_paths or not val_paths:
        raise InputError(f"--knn_folder {folder} needs images in train/<class>/ and val/<class>/")
    classes = sorted(set(train_names) | set(val_names))
    code = {name: i for i, name in enumerate(classes)}
    train = torch.from_numpy(embed_files(model, train_paths, batch_size, workers))
    val = torch.from_numpy(embed_files(model, val_paths, batch_size, workers))
    k = min(k, len(train_paths))
    accuracy = knn_accuracy(
        train,
        np.array([code[n] for n in train_names]),
        val,
        np.array([code[n] for n in val_names]),
        k,
    )
    return KnnResult(folder, k, accuracy, len(classes), len(train_paths), len(val_paths))
