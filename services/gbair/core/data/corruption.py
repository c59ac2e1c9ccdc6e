"""Synthetic label noise, for measuring how well mislabeled examples are found."""

from __future__ import annotations

import numpy as np

from gbair.core.data.dataset import TextDataset


def corrupt_labels(
    dataset: TextDataset, fraction: float, seed: int
) -> tuple[TextDataset, list[str]]:
    """Flip exactly `round(fraction * len(dataset))` labels, chosen uniformly at random, each to a
    uniformly random other class. Returns the corrupted copy and the flipped ids in dataset order;
    `dataset` keeps the true labels."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if dataset.num_classes < 2:
        raise ValueError("corrupting labels needs at least 2 classes")
    rng = np.random.default_rng(seed)
    positions = np.sort(
        rng.choice(len(dataset), size=round(fraction * len(dataset)), replace=False)
    )
    # Adding 1..k-1 modulo k reaches every other class with equal probability, never the same one.
    shifts = rng.integers(1, dataset.num_classes, size=len(positions))
    labels = np.array(dataset.labels)
    labels[positions] = (labels[positions] + shifts) % dataset.num_classes
    return dataset.with_labels(labels.tolist()), [dataset.ids[p] for p in positions.tolist()]
