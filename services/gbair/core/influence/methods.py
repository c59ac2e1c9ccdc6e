"""Suspicion scores: one number per training example, higher meaning more likely mislabeled.

TracIn scores are negated, so the strongest opponents of the misclassified validation examples come
first. The README's "Scoring methods" says why the plain sum cancels and what the class-aware forms and the
default add.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

import numpy as np
import torch

from gbair.core.config import ScoringMethod
from gbair.core.evaluation import most_probable_other
from gbair.core.influence.class_bias import class_short_of_labels
from gbair.core.influence.statistics import InfluenceStatistics

NEEDS_VALIDATION_ERRORS: frozenset[str] = frozenset(
    {"tracin-class-loss", "tracin", "tracin-class", "tracin-cos", "fused", "vote", "dda", "dda-debias", "dda-denoise"}
)
NEEDS_INITIAL_STATE: frozenset[str] = frozenset({"dda", "dda-debias"})
# Methods that compare the training labels and the validation errors with the whole trusted set.
NEEDS_TRUSTED_LABELS: frozenset[str] = frozenset({"tracin-class-loss"})
# Methods whose relabel suggestion is the round's model's most probable other label, not TracIn's rule: at
# many classes the few misclassified validation examples leave most classes without a query.
RELABEL_BY_MODEL: frozenset[str] = frozenset({"tracin-class-loss", "loss"})
# Peers scored from other evidence: K-fold training (core/confident_learning.py), the logits recorded while
# training (core/training_dynamics.py) or the backbone's embeddings (core/neighbours.py).
PEER_METHODS: frozenset[str] = frozenset({"confident-learning", "ensemble", "aum", "cartography", "knn"})
# Every method that suspicion_scores computes from influence statistics.
INFLUENCE_METHODS: tuple[str, ...] = tuple(m for m in get_args(ScoringMethod) if m not in PEER_METHODS)


def tracin(stats: InfluenceStatistics) -> torch.Tensor:
    """-sum_c eta_c g_c(z) . G_c with G_c the summed gradient of the misclassified validation examples."""
    return -stats.weighted(stats.dots.sum(dim=2))


def opposition_to_other_classes(stats: InfluenceStatistics) -> torch.Tensor:
    """The TracIn sum over the misclassified validation examples whose trusted label differs from z's given
    label: a mislabeled z supports the errors of its given class and opposes those of its true class, and the
    plain sum cancels the two."""
    return _opposition(stats, stats.query_labels.unsqueeze(0) != stats.train_labels.unsqueeze(1))


def tracin_class(stats: InfluenceStatistics) -> torch.Tensor:
    """`opposition_to_other_classes` standardised within each given class, since each given class sums over
    a different number of errors."""
    return standardise_within(opposition_to_other_classes(stats), stats.train_labels)


def tracin_class_loss(
    stats: InfluenceStatistics, trusted_labels: torch.Tensor, recorded_margins: torch.Tensor | None = None
) -> torch.Tensor:
    """`opposition_and_loss` where the round shows the marks of labels taken out of one class
    (`class_bias`); elsewhere every example's percentile by its margin averaged over training
    (`mean_margin`, at the checkpoints and in `recorded_margins`).

    The opposition finds the flips that class-conditional noise makes; where that noise leaves no mark, it
    is read against errors any model makes, and it only dilutes the margin, which ranks uniform flips, annotator
    disagreement and flips over many classes better (docs/benchmarks.md, "A default that reads the opposition
    only on the marks of class-conditional noise"). `trusted_labels`: the labels of the trusted examples the
    misclassified ones (the queries) were drawn from."""
    margin = mean_margin(stats, recorded_margins)
    if class_conditional_marks(stats, trusted_labels) is not None:
        return opposition_and_loss(stats, alone=margin)
    return _percentiles(margin)


def class_conditional_marks(stats: InfluenceStatistics, trusted_labels: torch.Tensor) -> int | None:
    """The class in which the round shows the marks of labels taken out of it (`class_bias`), where
    `tracin_class_loss` reads the opposition; None where it shows none."""
    num_classes = stats.final_logits.shape[1]
    return class_short_of_labels(stats.train_labels, trusted_labels, stats.query_labels, num_classes)


def opposition_and_loss(
    stats: InfluenceStatistics, *, loss: torch.Tensor | None = None, alone: torch.Tensor | None = None
) -> torch.Tensor:
    """Where z's suspected true class has misclassified validation examples: the mean of z's percentiles in
    two rankings, by its opposition to those errors and by final loss. Elsewhere: its percentile by the
    margin averaged over training (`mean_margin`).

    The loss finds the flips the model could not fit, spread over every class (uniform noise, annotator
    disagreement); the opposition finds the flips it learnt as if they were true, which pile up in one
    class and leave the trusted examples of their true class misclassified (class-conditional noise).
    The suspected true class is the trained model's most probable label other than the given one; with
    two classes it is the other class, and the opposition is `opposition_to_other_classes`. With many
    classes a few validation errors leave most classes without any, and an opposition of zero would only
    dilute the loss. Where no error points to a class-wide bias, the flips look like uniform noise, which
    the averaged margin ranks better than the final loss: it also says how long the model took to fit z.
    Beside the opposition the final loss stays: there the flips the model learnt matter, and an average
    over early checkpoints would rank them as easy. Unlike `tracin-class`, no per-class standardisation:
    flips concentrated in one given class must be able to outrank every example of the others. Ranks, not
    values: a few huge TracIn sums cannot drown the loss. `loss` and `alone` replace the final loss and the
    averaged margin, for the recovery benchmark's variants."""
    loss = final_loss(stats) if loss is None else loss
    alone = mean_margin(stats) if alone is None else alone
    suspected = torch.tensor(most_probable_other(stats.final_logits, stats.train_labels))
    of_suspected = stats.query_labels.unsqueeze(0) == suspected.unsqueeze(1)  # (N, M)
    mean_percentile = (_percentiles(_opposition(stats, of_suspected)) + _percentiles(loss)) / 2
    return torch.where(of_suspected.any(dim=1), mean_percentile, _percentiles(alone))


def tracin_cos(stats: InfluenceStatistics) -> torch.Tensor:
    tiny = torch.finfo(stats.dots.dtype).tiny
    norms = stats.train_sq_norms.sqrt().unsqueeze(2) * stats.query_sq_norms.sqrt().unsqueeze(1)
    return -stats.weighted((stats.dots / norms.clamp_min(tiny)).sum(dim=2))


def self_influence(stats: InfluenceStatistics) -> torch.Tensor:
    return stats.weighted(stats.train_sq_norms)


def final_loss(stats: InfluenceStatistics) -> torch.Tensor:
    return stats.train_losses[-1].clone()


def mean_margin(stats: InfluenceStatistics, recorded: torch.Tensor | None = None) -> torch.Tensor:
    """The margin (z's given-label logit minus its largest other logit) averaged over training, negated: how
    long training took to fit z, and against which rival. Averaged over the checkpoints and, where training
    recorded them, over `recorded` (epochs, N): the margins in the steps that trained on z, the area under
    the margin of Pleiss et al. (2020). The record adds the first epoch, before any checkpoint, when a flip
    is not fitted yet; the checkpoints add each epoch's end. Together they rank flips better than either
    alone on every kind of noise measured (docs/benchmarks.md, "The margin read while training and at the
    checkpoints"). With two classes the margin ranks about as the averaged loss does; with many, a flip
    keeps its true class as its one strong rival, which the margin reads and the loss spreads over every
    class."""
    margins = stats.train_margins
    if recorded is not None:
        margins = torch.cat([margins, recorded.to(margins)])
    return -margins.mean(dim=0)


def fused(stats: InfluenceStatistics) -> torch.Tensor:
    return tracin_class(stats) + standardise_within(self_influence(stats), stats.train_labels)


def vote(stats: InfluenceStatistics, top_fraction: float) -> torch.Tensor:
    """How many misclassified validation examples have z among their top opponents; ties go by tracin."""
    per_query = stats.weighted(stats.dots)  # (N, M)
    num_train = per_query.shape[0]
    top = max(1, round(top_fraction * num_train))
    opponents = per_query.topk(top, dim=0, largest=False).indices  # (top, M)
    votes = torch.zeros(num_train, dtype=torch.float64)
    votes.index_add_(0, opponents.flatten(), torch.ones(opponents.numel(), dtype=torch.float64))
    tie_break = _ranks(tracin(stats)) / (num_train + 1)
    return votes + tie_break


def dda(
    stats: InfluenceStatistics, initial: InfluenceStatistics | None, *, debias: bool, denoise: bool
) -> torch.Tensor:
    """Debias and Denoise Attribution (Wu et al. 2024) on the plain TracIn opposition.

    Debias: subtract, at every checkpoint, the opposition measured at the untrained initial prompt
    (`initial`: statistics from one checkpoint holding the initial state, with the query gradients taken
    there too), which is what the frozen backbone's own bias contributes before any fitting.
    Denoise: standardise each checkpoint's scores over the training set before the eta-weighted sum, so
    no single checkpoint's gradient scale dominates."""
    opposition = -stats.dots.sum(dim=2).double()  # (C, N)
    if debias:
        if initial is None:
            raise ValueError("debiasing needs influence statistics at the initial PET state")
        if initial.dots.shape[0] != 1 or initial.train_ids != stats.train_ids:
            raise ValueError("initial-state statistics must hold one checkpoint over the same training examples")
        opposition = opposition + initial.dots[0].sum(dim=1).double()
    if denoise:
        spread = opposition.std(dim=1, keepdim=True)
        opposition = (opposition - opposition.mean(dim=1, keepdim=True)) / torch.where(spread > 0, spread, 1.0)
    return stats.weighted(opposition)


def random_scores(num_train: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random(num_train))


def suspicion_scores(
    stats: InfluenceStatistics,
    method: ScoringMethod,
    *,
    vote_top_fraction: float = 0.1,
    seed: int = 0,
    initial: InfluenceStatistics | None = None,
    trusted_labels: torch.Tensor | None = None,
    recorded_margins: torch.Tensor | None = None,
) -> np.ndarray:
    """`initial` (statistics at the untrained initial state) is needed by the methods in
    NEEDS_INITIAL_STATE, `trusted_labels` (of the trusted examples the queries were drawn from) by those in
    NEEDS_TRUSTED_LABELS; the default also reads `recorded_margins`, (epochs, N), the margins training
    recorded (`training_dynamics.recorded_margins`), where there are any. The PEER_METHODS are not influence
    methods."""
    if method in NEEDS_TRUSTED_LABELS and trusted_labels is None:
        raise ValueError(f"{method} needs the labels of the trusted examples the validation errors were drawn from")
    scorers: dict[str, Callable[[], torch.Tensor]] = {
        "tracin-class-loss": lambda: tracin_class_loss(stats, trusted_labels, recorded_margins),
        "tracin": lambda: tracin(stats),
        "tracin-class": lambda: tracin_class(stats),
        "tracin-cos": lambda: tracin_cos(stats),
        "fused": lambda: fused(stats),
        "vote": lambda: vote(stats, vote_top_fraction),
        "self-influence": lambda: self_influence(stats),
        "loss": lambda: final_loss(stats),
        "random": lambda: random_scores(len(stats.train_ids), seed),
        "dda": lambda: dda(stats, initial, debias=True, denoise=True),
        "dda-debias": lambda: dda(stats, initial, debias=True, denoise=False),
        "dda-denoise": lambda: dda(stats, initial, debias=False, denoise=True),
    }
    if method in PEER_METHODS:
        raise ValueError(f"{method} is not scored from influence statistics; see gbair.core.recovery")
    if method not in scorers:
        raise ValueError(f"unknown scoring method {method!r}; choose one of {sorted(scorers)}")
    return scorers[method]().double().numpy()


def standardise_within(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    values = values.double()
    standardised = torch.zeros_like(values)
    for group in groups.unique():
        members = groups == group
        centred = values[members] - values[members].mean()
        spread = values[members].std() if int(members.sum()) > 1 else values.new_tensor(0.0)
        standardised[members] = centred / spread if spread > 0 else centred
    return standardised


def _opposition(stats: InfluenceStatistics, read: torch.Tensor) -> torch.Tensor:
    """-sum_c eta_c sum_v g_c(z) . g_c(v) over the misclassified validation examples v that `read` (N, M) marks
    for each z."""
    return -stats.weighted((stats.dots * read.to(stats.dots.dtype)).sum(dim=2))


def _percentiles(values: torch.Tensor) -> torch.Tensor:
    """(rank + 1) / N: 1 for the largest value."""
    return (_ranks(values) + 1) / values.numel()


def _ranks(values: torch.Tensor) -> torch.Tensor:
    """0 for the smallest value; tied values are ranked by position, the same on every machine."""
    ranks = torch.empty_like(values, dtype=torch.float64)
    ranks[values.argsort(stable=True)] = torch.arange(values.numel(), dtype=torch.float64)
    return ranks
