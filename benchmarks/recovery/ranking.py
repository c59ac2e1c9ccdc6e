"""The ranking grid: every method and peer ranks one noisy training set from the same training run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchmarks.common import ranking_metrics
from benchmarks.recovery.cells import CellRun, CellSpec
from benchmarks.recovery.variants import CLAIRVOYANT, VARIANTS, VARIANTS_RELABEL_BY_MODEL
from gbair.core.confident_learning import FOLD_METHODS, fold_training_sets, out_of_sample_fit, stratified_folds
from gbair.core.evaluation import log_losses, most_probable_other
from gbair.core.influence import INFLUENCE_METHODS, NEEDS_INITIAL_STATE, RELABEL_BY_MODEL, suspicion_scores
from gbair.core.influence.methods import class_conditional_marks
from gbair.core.neighbours import neighbour_labels
from gbair.core.progress import Progress
from gbair.core.training import initial_checkpoint
from gbair.core.training_dynamics import area_under_the_margin, cartography, most_probable_other_label, recorded_margins


def run_ranking_cell(args: argparse.Namespace, spec: CellSpec, progress: Progress) -> dict[str, Any]:
    run = CellRun(args, spec, progress)
    splits, backend = run.data.splits, run.backend
    reference = backend.encode(run.data.reference_train)
    train = backend.encode(splits.train)
    if args.workers > 1:
        trainings = [reference, train]
        if FOLD_METHODS & set(args.methods):
            trainings += fold_training_sets(train, stratified_folds(train.labels.numpy(), args.folds, spec.seed))
        run.timed("trainings_in_workers", lambda: run.train_in_workers(trainings))
    clean, clean_accuracy = run.timed("train_clean", lambda: run.train_and_test(reference))
    clean_probabilities = backend.probabilities(clean.final_state, train).double() if run.data.true_labels else None
    training, noisy_accuracy = run.timed("train_noisy", lambda: run.train_and_test(train))
    validation = backend.encode(splits.validation)
    final_probabilities = backend.probabilities(training.final_state, validation)
    errors = (final_probabilities.argmax(1) != validation.labels).nonzero().flatten().tolist()
    queries = backend.query_gradients(training.checkpoints, validation.subset(errors))

    def statistics(checkpoints, query):
        return backend.training_statistics(checkpoints, train, query, progress)

    stats = run.timed("influence", lambda: statistics(training.checkpoints, queries))
    initial_stats = None
    if NEEDS_INITIAL_STATE.intersection(args.methods):
        start = [initial_checkpoint(run.initial)]
        initial_stats = run.timed("influence_initial_state", lambda: statistics(
            start, backend.query_gradients(start, validation.subset(errors))))
    labels = train.labels
    given = labels.numpy()

    def from_probabilities(probabilities: torch.Tensor) -> Callable[[list[int]], list[int]]:
        return lambda positions: most_probable_other(probabilities[positions], labels[positions])

    def from_training(positions: list[int]) -> list[int]:
        return most_probable_other_label(training, labels, positions)

    def from_model(positions: list[int]) -> list[int]:
        """As the recovery does: the noisy model's probabilities of the flagged examples only."""
        return most_probable_other(backend.probabilities(training.final_state, train.subset(positions)), labels[positions])

    def from_tracin(positions: list[int]) -> list[int]:
        return backend.suggest_labels(training.checkpoints, train.subset(positions), queries)

    # method -> (suspicion scores, how it suggests labels); None where it suggests none.
    rankings: dict[str, tuple[np.ndarray, Callable | None]] = {}
    recorded = recorded_margins(training, labels)
    for method in INFLUENCE_METHODS:
        if method in args.methods:
            scores = suspicion_scores(stats, method, vote_top_fraction=run.config.influence.vote_top_fraction,
                                      seed=spec.seed, initial=initial_stats, trusted_labels=validation.labels,
                                      recorded_margins=recorded)
            # TracIn's relabel is many gradient passes per example and label: scored for G-BAIR's method only.
            suggest = from_model if method in RELABEL_BY_MODEL else from_tracin
            rankings[method] = (scores, suggest if method == args.gbair_method else None)
    for name, variant in VARIANTS.items():
        if name in args.methods:
            rankings[name] = (variant(stats, validation.labels).numpy(), from_model if name in VARIANTS_RELABEL_BY_MODEL else None)
    if "loss" in rankings:
        rankings["loss"] = (rankings["loss"][0], from_training)
    rankings["aum"] = (area_under_the_margin(training, labels), from_training)
    confidence, variability = cartography(training, labels)
    rankings["cartography"] = (1.0 - confidence, from_training)
    rankings["cartography-variability"] = (variability, from_training)
    if "knn" in args.methods:
        embeddings = run.timed("embeddings", lambda: backend.embeddings(train, progress))
        neighbours = neighbour_labels(embeddings, given, args.knn_neighbours, len(splits.label_names))
        rankings["knn"] = (neighbours.suspicion_scores(), neighbours.suggested_labels)
    if FOLD_METHODS & set(args.methods):
        fit = run.timed("folds", lambda: out_of_sample_fit(backend, train, args.folds, spec.seed, progress))
        rankings["confident-learning"] = (fit.suspicion_scores(), fit.suggested_labels)
        rankings["ensemble"] = (fit.ensemble_suspicion_scores(), lambda p: fit.suggested_labels(p, ensemble=True))
    if clean_probabilities is not None:
        # The loss of the given label under the model trained on the true labels: a ceiling, not a method.
        clairvoyant = log_losses(clean_probabilities, labels).numpy()
        rankings[CLAIRVOYANT] = (clairvoyant, from_probabilities(clean_probabilities))

    is_wrong = np.isin(train.ids, run.data.wrong_ids)
    flag_count = run.config.recovery.flag_count(len(train))
    label_index = {name: k for k, name in enumerate(splits.label_names)}
    methods = {}
    for method, (scores, suggest) in rankings.items():
        if method not in args.methods:
            continue
        metrics = ranking_metrics(scores, is_wrong, flag_count)
        # With two classes the only other label is the true one: relabel accuracy says nothing there.
        if suggest is not None and run.data.true_labels and len(splits.label_names) > 2:
            flagged = np.argsort(-scores, kind="stable")[:flag_count]
            flips = [int(p) for p in flagged if is_wrong[p]]
            suggested = suggest(flips) if flips else []
            truth = [label_index[run.data.true_labels[train.ids[p]]] for p in flips]
            metrics["relabel_accuracy"] = float(np.mean(np.equal(suggested, truth))) if flips else None
        methods[method] = metrics
    # Whether the default read the opposition here (the marks of class-conditional noise) or the averaged loss.
    marks = class_conditional_marks(stats, validation.labels) is not None
    return {
        **run.header(), "misclassified_val": len(errors), "checkpoints": len(training.checkpoints),
        "class_conditional_marks": marks, "accuracy": {"clean": clean_accuracy, "noisy": noisy_accuracy},
        "methods": methods, "seconds": run.seconds, "passes": run.passes(),
    }
