"""Synthetic label noise, for measuring how well mislabeled examples are found: uniform flips to any other
class, or class-conditional flips from one named class to another (annotators missing harmful content
turn Unsafe into Safe, never the reverse)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gbair.core.data.dataset import TextDataset


def corrupt_labels(
    dataset: TextDataset,
    fraction: float,
    seed: int,
    *,
    source: str | None = None,
    target: str | None = None,
) -> tuple[TextDataset, list[str]]:
    """Uniform (no `source`): flip exactly `round(fraction * len(dataset))` labels, chosen uniformly at
    random, each to a uniformly random other class. Class-conditional (`source` and `target` label names):
    flip exactly `round(fraction * n_source)` of the `source` examples to `target`.
    Returns the corrupted copy and the flipped ids in dataset order; `dataset` keeps the true labels."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if dataset.num_classes < 2:
        raise ValueError("corrupting labels needs at least 2 classes")
    if (source is None) != (target is None):
        raise ValueError("class-conditional noise needs both a source and a target class")
    rng = np.random.default_rng(seed)
    labels = np.array(dataset.labels)
    if source is None:
        positions = np.sort(rng.choice(len(dataset), size=round(fraction * len(dataset)), replace=False))
        # Adding 1..k-1 modulo k reaches every other class with equal probability, never the same one.
        shifts = rng.integers(1, dataset.num_classes, size=len(positions))
        labels[positions] = (labels[positions] + shifts) % dataset.num_classes
    else:
        source_label, target_label = (_label_index(dataset, name) for name in (source, target))
        if source_label == target_label:
            raise ValueError(f"class-conditional noise flips between two different classes, got {source!r} twice")
        members = np.flatnonzero(labels == source_label)
        positions = np.sort(rng.choice(members, size=round(fraction * len(members)), replace=False))
        labels[positions] = target_label
    return dataset.with_labels(labels.tolist()), [dataset.ids[p] for p in positions.tolist()]


def true_label_names(dataset: TextDataset, ids: Sequence[str]) -> dict[str, str]:
    """The label name `dataset` (the uncorrupted set) gives each of `ids`."""
    return {i: dataset.label_names[dataset.labels[p]] for i, p in zip(ids, dataset.positions(ids))}


def _label_index(dataset: TextDataset, name: str) -> int:
    if name not in dataset.label_names:
        raise ValueError(f"{name!r} is not a label of this data set; choose one of {dataset.label_names}")
    return dataset.label_names.index(name)
