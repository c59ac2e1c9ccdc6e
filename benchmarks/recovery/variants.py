"""Rankings measured only in the benchmark, beside the product's methods: what was tried on the way to the
default, and the list of every ranking scored."""

from __future__ import annotations

from collections.abc import Callable

import torch
from scipy.stats import binom

from gbair.core.influence import INFLUENCE_METHODS, InfluenceStatistics
from gbair.core.influence.methods import final_loss, opposition_and_loss, standardise_within, tracin, tracin_class_loss

# How unlikely a class's share of the validation errors must be, were errors spread in proportion to the
# classes, before `tracin-class-loss-pile-up-test` reads a class-wide bias; divided by the number of classes
# (Bonferroni), so that many classes do not make one of them look biased by chance.
ERRORS_PILE_UP_SIGNIFICANCE = 0.05


def errors_pile_up(query_labels: torch.Tensor, trusted_labels: torch.Tensor, num_classes: int) -> bool:
    """Whether the misclassified trusted examples (`query_labels`) pile up in some class beyond chance: a
    one-sided binomial test of each class's error count against the whole trusted set's error rate."""
    trusted = torch.bincount(trusted_labels, minlength=num_classes).numpy()
    errors = torch.bincount(query_labels, minlength=num_classes).numpy()
    if errors.sum() == 0:
        return False
    chance_of_as_many = binom.sf(errors - 1, trusted, errors.sum() / trusted.sum())
    return bool((chance_of_as_many < ERRORS_PILE_UP_SIGNIFICANCE / num_classes).any())


def mean_loss(stats: InfluenceStatistics) -> torch.Tensor:
    """The loss averaged over the checkpoints, what the default read without the marks before the margin."""
    return stats.train_losses.mean(dim=0)


def tracin_class_loss_where_errors_pile_up(stats: InfluenceStatistics, trusted_labels: torch.Tensor) -> torch.Tensor:
    """The ungated default where the validation errors pile up in some class, else every example's loss
    averaged over the checkpoints: the opposition read only on evidence of a class-wide bias (tried before the
    marks, when the default read the averaged loss)."""
    if errors_pile_up(stats.query_labels, trusted_labels, stats.final_logits.shape[1]):
        return opposition_and_loss(stats)
    return mean_loss(stats)


# Measured here only, each from the statistics and the trusted set's labels: what closes the gap of the plain
# sum (README, "Scoring methods": why the plain sum cancels), the loss averaged over checkpoints alone (what
# the default read without the marks before the margin), the default before it read the margins training
# recorded (`-checkpoint-margin`: the margin at the checkpoints only), the default before it looked for the
# marks of class-conditional noise (`-ungated`), that one with the final loss read alone too or the averaged
# loss beside the opposition too, and it read only where the validation errors pile up in a class.
VARIANTS: dict[str, Callable[[InfluenceStatistics, torch.Tensor], torch.Tensor]] = {
    "tracin-within-class": lambda stats, _: standardise_within(tracin(stats), stats.train_labels),
    "mean-loss": lambda stats, _: mean_loss(stats),
    "tracin-class-loss-checkpoint-margin": tracin_class_loss,
    "tracin-class-loss-ungated": lambda stats, _: opposition_and_loss(stats),
    "tracin-class-final-loss": lambda stats, _: opposition_and_loss(stats, alone=final_loss(stats)),
    "tracin-class-mean-loss": lambda stats, _: opposition_and_loss(stats, loss=mean_loss(stats)),
    "tracin-class-loss-pile-up-test": tracin_class_loss_where_errors_pile_up,
}
# Variants that suggest labels as the default does, from the model's probabilities of the flagged examples.
VARIANTS_RELABEL_BY_MODEL = {"mean-loss", "tracin-class-loss-checkpoint-margin", "tracin-class-loss-ungated",
                             "tracin-class-final-loss", "tracin-class-mean-loss", "tracin-class-loss-pile-up-test"}
CLAIRVOYANT = "clairvoyant"
# Every ranking scored. `cartography-variability` is ranked but not a --method: variability marks ambiguous
# examples, a different thing from mislabeled ones; `clairvoyant` needs the true labels (synthetic noise only).
RANKED = [*INFLUENCE_METHODS, *VARIANTS, "aum", "cartography", "cartography-variability", "knn",
          "confident-learning", "ensemble", CLAIRVOYANT]
