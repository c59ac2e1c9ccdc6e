"""Per-example gradients of every trainable PET parameter from one batched backward pass, and the
logits' directional derivatives from one forward-mode pass."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.func import functional_call, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from gbair.core.model.inputs import Batch
from gbair.core.model.pet import PetClassifier


class ExampleGradients(NamedTuple):
    gradients: torch.Tensor
    """(batch, num_trainable) flattened, in `trainable_parameters()` order"""
    losses: torch.Tensor
    """(batch,)"""
    logits: torch.Tensor
    """(batch, classes)"""


def per_example_gradients(classifier: PetClassifier, batch: Batch) -> ExampleGradients:
    """Each example's loss gradient, with the loss and logits of the forward pass that gave it."""
    batch = batch.to(classifier.device)
    with torch.enable_grad():
        output = classifier(batch.input_ids, batch.attention_mask)
        losses = F.cross_entropy(output.logits, batch.labels, reduction="none")
        gradients = output.per_example_gradients(losses)
    return ExampleGradients(gradients.detach(), losses.detach(), output.logits.detach())


def logit_derivatives(classifier: PetClassifier, batch: Batch, direction: torch.Tensor) -> torch.Tensor:
    """(batch, classes): J v, how fast each example's logits change as the trainable parameters move
    along `direction` (num_trainable, in `trainable_parameters()` order)."""
    batch = batch.to(classifier.device)
    names = {id(parameter): name for name, parameter in classifier.named_parameters()}
    trainable = classifier.trainable_parameters().values()
    pieces = torch.split(direction.to(classifier.device), [p.numel() for p in trainable])
    primals = {names[id(p)]: p.detach() for p in trainable}
    tangents = {names[id(p)]: piece.view_as(p).to(p.dtype) for p, piece in zip(trainable, pieces)}

    def logits(parameters: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(classifier, parameters, (batch.input_ids, batch.attention_mask)).logits

    # The fused CPU attention kernel has no forward-mode derivative; the math one is plain tensor ops.
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        _, derivatives = jvp(logits, (primals,), (tangents,))
    return derivatives
