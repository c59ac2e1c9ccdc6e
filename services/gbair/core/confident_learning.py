"""Confident learning (Northcutt et al. 2021), the strongest non-gradient peer of the influence methods:
K-fold PET training gives every training example a class distribution from a model that never saw it,
and cleanlab flags the examples whose given label that distribution contradicts.

The same K fold models, each predicting the whole training set, also make an ensemble: the mean of their
probabilities, in-sample for K - 1 of them, scored by the probability it leaves the given label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from cleanlab.filter import find_label_issues

from gbair.core.backend import RoundBackend, TrainingRequest
from gbair.core.evaluation import most_probable_other
from gbair.core.model.inputs import EncodedSet
from gbair.core.progress import Progress, no_progress

FOLD_METHODS = frozenset({"confident-learning", "ensemble"})
"""Scoring methods that train K fold models on every round's training set."""


@dataclass(frozen=True)
class OutOfSampleFit:
    labels: np.ndarray
    """(N,) the labels as given"""
    probabilities: np.ndarray
    """(N, K) each row predicted by the fold model that did not train on that example"""
    ensemble_probabilities: np.ndarray
    """(N, K) the mean over all fold models"""

    def suspicion_scores(self) -> np.ndarray:
        """cleanlab's issues first, each group ordered by self-confidence (the given label's probability),
        lowest first: the ranking `find_label_issues(..., return_indices_ranked_by="self_confidence")`
        gives, extended to every example so it can be scored by AUROC."""
        # n_jobs=1: cleanlab's process pool reads globals its workers inherit by fork, and fails with a
        # NameError inside a process that was itself spawned (a benchmark's worker pool); one class at a
        # time takes milliseconds here.
        issues = find_label_issues(self.labels, self.probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
        scores = 1.0 - self.probabilities[np.arange(len(self.labels)), self.labels]
        scores[issues] += 1.0
        return scores

    def ensemble_suspicion_scores(self) -> np.ndarray:
        return 1.0 - self.ensemble_probabilities[np.arange(len(self.labels)), self.labels]

    def suggested_labels(self, positions: Sequence[int], ensemble: bool = False) -> list[int]:
        """The most probable label other than the given one, out of sample (or by the ensemble)."""
        source = self.ensemble_probabilities if ensemble else self.probabilities
        rows = list(positions)
        return most_probable_other(torch.from_numpy(source[rows]), torch.from_numpy(self.labels[rows]))


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold index per example; each class is dealt round-robin over the folds in a seeded random order."""
    counts = np.bincount(labels)
    if counts[counts > 0].min() < folds:
        raise ValueError(f"{folds}-fold training needs at least {folds} examples of every class present")
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        assignment[members] = np.arange(len(members)) % folds
    return assignment


def fold_training_sets(train: EncodedSet, assignment: np.ndarray) -> list[EncodedSet]:
    """What each fold model trains on: every example outside its fold."""
    return [train.subset(np.flatnonzero(assignment != fold).tolist()) for fold in range(int(assignment.max()) + 1)]


def out_of_sample_fit(
    backend: RoundBackend, train: EncodedSet, folds: int, seed: int, progress: Progress = no_progress
) -> OutOfSampleFit:
    """Train `folds` classifiers from the backend's initial state, each on all folds but one, wherever the
    backend trains rounds, and predict the whole set: the one left out for the out-of-sample probabilities,
    all of it for the ensemble."""
    labels = train.labels.numpy()
    assignment = stratified_folds(labels, folds, seed)
    probabilities, ensemble = None, None
    requests = [TrainingRequest(backend.initial_state, fold_train)
                for fold_train in fold_training_sets(train, assignment)]
    for fold, trained in enumerate(backend.train_each(requests, progress)):
        held_out = assignment == fold
        predicted = backend.probabilities(trained.final_state, train).double().numpy()
        backend.discard(trained)  # a fold model is read here only: on a cluster its checkpoints would stay in storage
        if probabilities is None:
            probabilities, ensemble = np.empty_like(predicted), np.zeros_like(predicted)
        probabilities[held_out] = predicted[held_out]
        ensemble += predicted / folds
    return OutOfSampleFit(labels, probabilities, ensemble)
