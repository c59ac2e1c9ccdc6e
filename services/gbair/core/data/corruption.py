"""Synthetic label noise, for measuring how well mislabeled examples are found: uniform flips to any other
class, or class-conditional flips from named classes to others (annotators missing harmful content turn
Unsafe into Safe, never the reverse; one intent systematically taken for another)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gbair.core.data.dataset import TextDataset


def corrupt_labels(
    dataset: TextDataset, fraction: float, seed: int, *, flips: Mapping[str, str] | None = None
) -> tuple[TextDataset, list[str]]:
    """Uniform (no `flips`): flip exactly `round(fraction * len(dataset))` labels, chosen uniformly at
    random, each to a uniformly random other class. Class-conditional (`flips`, from a label name to
    another): flip exactly `round(fraction * n_c)` of the examples of each class c that `flips` names to
    `flips[c]`, drawn from the true labels in the order of `flips`.
    Returns the corrupted copy and the flipped ids in dataset order; `dataset` keeps the true labels."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if dataset.num_classes < 2:
        raise ValueError("corrupting labels needs at least 2 classes")
    rng = np.random.default_rng(seed)
    true = np.array(dataset.labels)
    labels = true.copy()
    if flips is None:
        positions = np.sort(rng.choice(len(dataset), size=round(fraction * len(dataset)), replace=False))
        # Adding 1..k-1 modulo k reaches every other class with equal probability, never the same one.
        shifts = rng.integers(1, dataset.num_classes, size=len(positions))
        labels[positions] = (labels[positions] + shifts) % dataset.num_classes
    else:
        if not flips:
            raise ValueError("class-conditional noise needs at least one class to flip from")
        for source, target in flips.items():
            source_label, target_label = (_label_index(dataset, name) for name in (source, target))
            if source_label == target_label:
                raise ValueError(f"class-conditional noise flips between two different classes, got {source!r} twice")
            members = np.flatnonzero(true == source_label)
            labels[rng.choice(members, size=round(fraction * len(members)), replace=False)] = target_label
        positions = np.flatnonzero(labels != true)
    return dataset.with_labels(labels.tolist()), [dataset.ids[p] for p in positions.tolist()]


def pair_flips(dataset: TextDataset) -> dict[str, str]:
    """Pair flipping (Han et al. 2018, Co-teaching): each class to the next in label order, the last to the
    first. Every class loses a fraction of its labels to one other class and gains as many from another, so
    the class shares barely move, unlike flips out of one class."""
    names = dataset.label_names
    return {name: names[(i + 1) % len(names)] for i, name in enumerate(names)}


def true_label_names(dataset: TextDataset, ids: Sequence[str]) -> dict[str, str]:
    """The label name `dataset` (the uncorrupted set) gives each of `ids`."""
    return {i: dataset.label_names[dataset.labels[p]] for i, p in zip(ids, dataset.positions(ids))}


def _label_index(dataset: TextDataset, name: str) -> int:
    if name not in dataset.label_names:
        raise ValueError(f"{name!r} is not a label of this data set; choose one of {dataset.label_names}")
    return dataset.label_names.index(name)
