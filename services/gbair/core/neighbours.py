"""k-nearest-neighbour label disagreement on the frozen backbone's own embeddings: a mislabeled example
sits among examples of its true class, so many of its neighbours carry a label other than its given one.
The embedding is the backbone's mean-pooled last hidden state without the soft prompt, so it does not
depend on training at all and no trained model's fit of the noise leaks into it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier
from gbair.core.progress import Progress, no_progress


@torch.no_grad()
def backbone_embeddings(
    classifier: PetClassifier, examples: EncodedSet, batch_size: int = 64, progress: Progress = no_progress
) -> np.ndarray:
    """(N, D) mean-pooled last hidden states of the backbone alone (peft adds the prompt only in its own
    forward, so calling the base model skips it)."""
    base = classifier.peft_model.get_base_model()
    body = base if classifier.kind == "encoder" else base.get_decoder()
    embeddings = None
    done = 0
    for batch in examples.batches(batch_size):
        batch = batch.to(classifier.device)
        hidden = body(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        weights = batch.attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = ((hidden * weights).sum(dim=1) / weights.sum(dim=1)).double().cpu().numpy()
        if embeddings is None:
            embeddings = np.empty((len(examples), pooled.shape[1]))
        embeddings[batch.positions.cpu().numpy()] = pooled
        done += len(batch.positions)
        progress("embed", done, len(examples))
    return embeddings


@dataclass(frozen=True)
class NeighbourLabels:
    labels: np.ndarray
    """(N,) the labels as given"""
    neighbour_labels: np.ndarray
    """(N, k) the given labels of each example's k nearest other examples, nearest first"""
    num_classes: int

    def suspicion_scores(self) -> np.ndarray:
        """The share of the k neighbours whose label differs from the example's own."""
        return (self.neighbour_labels != self.labels[:, None]).mean(axis=1)

    def suggested_labels(self, positions: list[int]) -> list[int]:
        """The most common other label among the neighbours (ties: the smaller label index)."""
        suggestions = []
        for position in positions:
            votes = np.bincount(self.neighbour_labels[position], minlength=self.num_classes).astype(float)
            votes[self.labels[position]] = -1
            suggestions.append(int(votes.argmax()))
        return suggestions


def neighbour_labels(embeddings: np.ndarray, labels: np.ndarray, k: int, num_classes: int) -> NeighbourLabels:
    """Cosine neighbours, each example's own row left out."""
    k = min(k, len(labels) - 1)
    index = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(embeddings)
    _, neighbours = index.kneighbors(embeddings)
    # The nearest hit is normally the example itself; drop it by identity, not by position, as exact
    # duplicates may come first.
    others = np.array([[n for n in row if n != i][:k] for i, row in enumerate(neighbours)])
    return NeighbourLabels(labels, labels[others], num_classes)
