"""kNN zero-shot classification: each query takes the majority label of its k nearest
candidates by cosine similarity (ImageFolder-style train/ candidates, val/ queries).
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from training.eval.retrieval import iter_topk


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
