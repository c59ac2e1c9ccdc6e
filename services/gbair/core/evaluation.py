"""Class probabilities and accuracy of a prompt-tuned classifier."""

from __future__ import annotations

from collections.abc import Collection

import torch
from scipy.stats import binomtest

from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier
from gbair.core.progress import Progress, no_progress


@torch.no_grad()
def predict_probabilities(
    classifier: PetClassifier, examples: EncodedSet, batch_size: int = 64, progress: Progress = no_progress
) -> torch.Tensor:
    probabilities = torch.empty(len(examples), len(classifier.label_names))
    done = 0
    for batch in examples.batches(batch_size):
        logits = classifier(batch.input_ids.to(classifier.device), batch.attention_mask.to(classifier.device)).logits
        probabilities[batch.positions] = logits.softmax(dim=-1).float().cpu()
        done += len(batch.positions)
        progress("evaluate", done, len(examples))
    return probabilities


def accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    return (probabilities.argmax(dim=-1) == labels).float().mean().item()


def log_losses(probabilities: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each example's cross-entropy, -log p(label), in float64; a zero probability gives a large finite loss."""
    chosen = probabilities[torch.arange(len(labels)), labels].double()
    return -chosen.clamp_min(torch.finfo(torch.float64).tiny).log()


def mean_log_loss(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    """Unlike accuracy, it moves with every example's confidence, not only with the ones that cross the
    decision boundary."""
    return log_losses(probabilities, labels).mean().item()


def paired_change_p_value(wrong_before: Collection[str] | None, wrong_after: Collection[str] | None) -> float | None:
    """McNemar's exact test on the same examples: the probability, were both models equally good, that the
    examples one of them alone gets wrong split at least this unevenly between them. None when either
    model's mistakes were not recorded (rounds and reports from before they were)."""
    if wrong_before is None or wrong_after is None:
        return None
    before, after = set(wrong_before), set(wrong_after)
    fixed, broken = len(before - after), len(after - before)
    if fixed + broken == 0:
        return 1.0
    return binomtest(fixed, fixed + broken).pvalue


def margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(..., N) from logits (..., N, K): each example's given-label logit minus its largest other logit."""
    given = labels.unsqueeze(-1).expand(*logits.shape[:-1], 1)
    return logits.gather(-1, given).squeeze(-1) - logits.scatter(-1, given, -torch.inf).max(dim=-1).values


def most_probable_other(scores: torch.Tensor, given: torch.Tensor) -> list[int]:
    """Per row of class scores (probabilities or logits), the highest-scoring class other than the given one."""
    others = scores.clone()
    others[torch.arange(len(given)), given] = -torch.inf
    return others.argmax(dim=1).tolist()
