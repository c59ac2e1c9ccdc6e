"""Per-example gradients of every trainable PET parameter from one batched backward pass."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gbair.core.model.inputs import Batch
from gbair.core.model.pet import PetClassifier


def per_example_gradients(
    classifier: PetClassifier, batch: Batch, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of flattened gradients (batch, num_trainable), in `trainable_parameters()` order, and the
    per-example losses."""
    batch = batch.to(classifier.device)
    targets = batch.labels if labels is None else labels.to(classifier.device)
    with torch.enable_grad():
        output = classifier(batch.input_ids, batch.attention_mask)
        losses = F.cross_entropy(output.logits, targets, reduction="none")
        gradients = output.per_example_gradients(losses)
    return gradients.detach(), losses.detach()
