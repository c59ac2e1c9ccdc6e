"""For a flagged example, the label that would make it the strongest proponent of the misclassified
validation examples: argmax over y' != y of sum_c eta_c g_c(x, y') . G_c.

The loss is cross-entropy on the class logits, so g(x, y') = J^T (p - e_y') with J the logits' Jacobian,
and g(x, y') . G = p . JG - (JG)_y'. The first term is the same for every candidate, so the argmax is the
argmin over y' of sum_c eta_c (J_c G_c)_y': one forward-mode pass per checkpoint, whatever the number of
classes, instead of one backward pass per class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gbair.core.influence.gradients import logit_derivatives
from gbair.core.influence.statistics import QueryGradients
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier
from gbair.core.training import Checkpoint


def suggest_labels(
    classifier: PetClassifier,
    checkpoints: Sequence[Checkpoint],
    examples: EncodedSet,
    queries: QueryGradients,
    batch_size: int,
) -> list[int]:
    support = torch.zeros(len(examples), len(classifier.label_names), dtype=torch.float64)
    summed = queries.summed
    for c, checkpoint in enumerate(checkpoints):
        classifier.load_pet_state(checkpoint.state)
        for batch in examples.batches(batch_size):
            derivatives = logit_derivatives(classifier, batch, summed[c])
            support[batch.positions] -= queries.learning_rates[c] * derivatives.double().cpu()
    # Keeping the given label is not a relabel.
    support[torch.arange(len(examples)), examples.labels] = -torch.inf
    return support.argmax(dim=1).tolist()
