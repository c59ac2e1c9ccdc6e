"""For a flagged example, the label that would make it the strongest proponent of the misclassified
validation examples: argmax over y' != y of sum_c eta_c g_c(x, y') . G_c."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gbair.core.influence.gradients import per_example_gradients
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
    num_classes = len(classifier.label_names)
    influence = torch.zeros(len(examples), num_classes, dtype=torch.float64)
    summed = queries.summed
    for c, checkpoint in enumerate(checkpoints):
        classifier.load_pet_state(checkpoint.state)
        target = summed[c].to(classifier.device)
        for batch in examples.batches(batch_size):
            for label in range(num_classes):
                candidate = torch.full_like(batch.labels, label)
                gradients, _ = per_example_gradients(classifier, batch, labels=candidate)
                influence[batch.positions, label] += queries.learning_rates[c] * (gradients @ target).double().cpu()
    # Keeping the given label is not a relabel.
    influence[torch.arange(len(examples)), examples.labels] = -torch.inf
    return influence.argmax(dim=1).tolist()
