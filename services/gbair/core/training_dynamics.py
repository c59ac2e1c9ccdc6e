"""Peers that read how each training example was fitted during training, from the logits it got in the
steps that trained on it (`TrainingResult.training_logits`): no forward pass beyond training's own.

- Area Under the Margin (Pleiss et al. 2020): the margin of an example is the logit of its given label
  minus the largest other logit; averaged over training, it stays low or negative for a mislabeled
  example, which the other examples of its given class keep pulling the wrong way.
- Dataset Cartography (Swayamdipta et al. 2020): confidence is the mean probability of the given label
  over epochs, variability its standard deviation; mislabeled examples sit in the "hard to learn"
  region (low confidence), ambiguous ones in the high-variability region.
"""

from __future__ import annotations

import numpy as np
import torch

from gbair.core.evaluation import margins, most_probable_other
from gbair.core.training import TrainingResult


def training_logits(training: TrainingResult) -> torch.Tensor:
    if training.training_logits is None:
        raise ValueError(
            "this method reads the logits recorded while training, and this round was saved by a gbair that did "
            "not keep them: run the job again"
        )
    return training.training_logits


def recorded_margins(training: TrainingResult, labels: torch.Tensor) -> torch.Tensor:
    """(epochs, N): each example's margin in the steps that trained on it."""
    return margins(training_logits(training), labels)


def area_under_the_margin(training: TrainingResult, labels: torch.Tensor) -> np.ndarray:
    """Suspicion: the negated mean margin over training."""
    return -recorded_margins(training, labels).double().mean(dim=0).numpy()


def cartography(training: TrainingResult, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, variability) of each example: mean and standard deviation over epochs of the
    probability of its given label."""
    probabilities = training_logits(training).double().softmax(dim=2)
    given = probabilities.gather(2, labels.view(1, -1, 1).expand(probabilities.shape[0], -1, 1)).squeeze(2)
    return given.mean(dim=0).numpy(), given.std(dim=0, unbiased=False).numpy()


def most_probable_other_label(training: TrainingResult, labels: torch.Tensor, positions: list[int]) -> list[int]:
    """The relabel these peers suggest: the most probable other label in the last epoch's logits."""
    return most_probable_other(training_logits(training)[-1, positions], labels[positions])
