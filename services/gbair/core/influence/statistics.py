"""The raw inner products every influence method is built from, gathered in one gradient pass over the
training set per checkpoint.

For checkpoint c, training example z and query example v (a misclassified validation example, or the
one example being explained) we keep g_c(z) . g_c(v), ||g_c(z)||^2, the loss and the margin of z, and z's
logits at the last checkpoint (the trained model's, which the default score reads z's suspected true class from).
Comparing against the M query gradients costs one (batch x P) @ (P x M) product per batch, which is small
next to the backbone's forward and backward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gbair.core.evaluation import margins
from gbair.core.influence.gradients import per_example_gradients
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier
from gbair.core.progress import Progress, no_progress
from gbair.core.training import Checkpoint


@dataclass(frozen=True)
class QueryGradients:
    labels: torch.Tensor
    """(M,) the trusted labels the query gradients were taken with"""
    gradients: torch.Tensor
    """(C, M, P)"""
    learning_rates: torch.Tensor
    """(C,)"""

    @property
    def summed(self) -> torch.Tensor:
        """(C, P): G_c, the summed query gradient per checkpoint."""
        return self.gradients.sum(dim=1)


@dataclass(frozen=True)
class InfluenceStatistics:
    train_ids: list[str]
    train_labels: torch.Tensor
    """(N,) the labels as given, which the training gradients were taken with"""
    query_labels: torch.Tensor
    """(M,)"""
    learning_rates: torch.Tensor
    """(C,)"""
    dots: torch.Tensor
    """(C, N, M) g_c(z) . g_c(v)"""
    train_sq_norms: torch.Tensor
    """(C, N)"""
    query_sq_norms: torch.Tensor
    """(C, M)"""
    train_losses: torch.Tensor
    """(C, N)"""
    train_margins: torch.Tensor
    """(C, N) z's given-label logit minus its largest other logit"""
    final_logits: torch.Tensor
    """(N, K) at the last checkpoint, which is the trained model"""

    def weighted(self, per_checkpoint: torch.Tensor) -> torch.Tensor:
        """sum_c eta_c * x_c over the leading checkpoint axis."""
        shape = (-1,) + (1,) * (per_checkpoint.dim() - 1)
        return (self.learning_rates.view(shape).to(per_checkpoint.dtype) * per_checkpoint).sum(dim=0)


def query_gradients(
    classifier: PetClassifier,
    checkpoints: Sequence[Checkpoint],
    queries: EncodedSet,
    batch_size: int,
) -> QueryGradients:
    per_checkpoint = []
    for checkpoint in checkpoints:
        classifier.load_pet_state(checkpoint.state)
        gradients = torch.empty(len(queries), classifier.num_trainable, dtype=_dtype(classifier))
        for batch in queries.batches(batch_size):
            gradients[batch.positions] = per_example_gradients(classifier, batch)[0].cpu()
        per_checkpoint.append(gradients)
    return QueryGradients(
        labels=queries.labels.clone(),
        gradients=torch.stack(per_checkpoint),
        learning_rates=_learning_rates(checkpoints),
    )


def training_statistics(
    classifier: PetClassifier,
    checkpoints: Sequence[Checkpoint],
    train: EncodedSet,
    queries: QueryGradients,
    batch_size: int,
    progress: Progress = no_progress,
) -> InfluenceStatistics:
    dtype = _dtype(classifier)
    num_checkpoints, num_queries = len(checkpoints), queries.labels.numel()
    dots = torch.empty(num_checkpoints, len(train), num_queries, dtype=dtype)
    train_sq_norms = torch.empty(num_checkpoints, len(train), dtype=dtype)
    train_losses = torch.empty(num_checkpoints, len(train), dtype=dtype)
    train_margins = torch.empty(num_checkpoints, len(train), dtype=dtype)
    final_logits = torch.empty(len(train), len(classifier.label_names), dtype=dtype)
    done, total = 0, num_checkpoints * len(train)
    for c, checkpoint in enumerate(checkpoints):
        classifier.load_pet_state(checkpoint.state)
        query_matrix = queries.gradients[c].to(classifier.device)
        for batch in train.batches(batch_size):
            gradients, losses, logits = per_example_gradients(classifier, batch)
            dots[c, batch.positions] = (gradients @ query_matrix.T).cpu()
            train_sq_norms[c, batch.positions] = gradients.pow(2).sum(dim=1).cpu()
            train_losses[c, batch.positions] = losses.cpu()
            train_margins[c, batch.positions] = margins(logits.cpu(), batch.labels).to(dtype)
            if c == num_checkpoints - 1:
                final_logits[batch.positions] = logits.to(dtype).cpu()
            done += len(batch.positions)
            progress("influence", done, total)
    return InfluenceStatistics(
        train_ids=list(train.ids),
        train_labels=train.labels.clone(),
        query_labels=queries.labels.clone(),
        learning_rates=_learning_rates(checkpoints),
        dots=dots,
        train_sq_norms=train_sq_norms,
        query_sq_norms=queries.gradients.pow(2).sum(dim=2),
        train_losses=train_losses,
        train_margins=train_margins,
        final_logits=final_logits,
    )


def _learning_rates(checkpoints: Sequence[Checkpoint]) -> torch.Tensor:
    return torch.tensor([c.learning_rate for c in checkpoints], dtype=torch.float64)


def _dtype(classifier: PetClassifier) -> torch.dtype:
    return classifier.prompt_embedding.weight.dtype
