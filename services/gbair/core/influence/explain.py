"""TracIn evidence around one example: of a set of examples, those whose TracIn score with it is the most
positive (proponents) and the most negative (opponents). Against the training set, why the example is
predicted as it is; against the trusted validation set, which trusted examples a training example helps
and hurts (TracIn's dot product is symmetric, so one computation serves both)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gbair.core.influence.gradients import per_example_gradients
from gbair.core.influence.statistics import query_gradients
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier
from gbair.core.progress import Progress, no_progress
from gbair.core.training import Checkpoint


@dataclass(frozen=True)
class Influence:
    example_id: str
    score: float


@dataclass(frozen=True)
class Explanation:
    example_id: str
    proponents: list[Influence]
    opponents: list[Influence]


@dataclass(frozen=True)
class ExampleGradients:
    """Every example's gradient (with its label) at each checkpoint, kept so that explaining one more
    example costs one gradient per checkpoint instead of a pass over the set. Holds C x N x P numbers
    (checkpoints, examples, trainable parameters) in the classifier's dtype."""

    ids: list[str]
    gradients: torch.Tensor
    """(C, N, P)"""
    learning_rates: torch.Tensor
    """(C,)"""

    @classmethod
    def compute(
        cls,
        classifier: PetClassifier,
        checkpoints: Sequence[Checkpoint],
        examples: EncodedSet,
        batch_size: int = 64,
        progress: Progress = no_progress,
    ) -> ExampleGradients:
        dtype = classifier.prompt_embedding.weight.dtype
        gradients = torch.empty(len(checkpoints), len(examples), classifier.num_trainable, dtype=dtype)
        done, total = 0, len(checkpoints) * len(examples)
        for c, checkpoint in enumerate(checkpoints):
            classifier.load_pet_state(checkpoint.state)
            for batch in examples.batches(batch_size):
                gradients[c, batch.positions] = per_example_gradients(classifier, batch)[0].cpu()
                done += len(batch.positions)
                progress("influence", done, total)
        learning_rates = torch.tensor([c.learning_rate for c in checkpoints], dtype=torch.float64)
        return cls(list(examples.ids), gradients, learning_rates)

    def explain(
        self,
        classifier: PetClassifier,
        checkpoints: Sequence[Checkpoint],
        example: EncodedSet,
        top: int = 10,
        batch_size: int = 64,
    ) -> Explanation:
        """`checkpoints` are the ones these gradients were computed at; this loads each into `classifier`."""
        if len(example) != 1:
            raise ValueError(f"explain one example at a time, got {len(example)}")
        query = query_gradients(classifier, checkpoints, example, batch_size).gradients[:, 0]
        dots = torch.einsum("cnp,cp->cn", self.gradients, query)
        scores = (self.learning_rates.view(-1, 1).to(dots.dtype) * dots).sum(dim=0).tolist()
        order = sorted(range(len(scores)), key=scores.__getitem__)
        # Signed lists: with few examples the top of one side would otherwise run into the other side, and
        # an example that helps would be shown among those that hurt.
        return Explanation(
            example_id=example.ids[0],
            proponents=[Influence(self.ids[i], scores[i]) for i in reversed(order) if scores[i] > 0][:top],
            opponents=[Influence(self.ids[i], scores[i]) for i in order if scores[i] < 0][:top],
        )


def explain_example(
    classifier: PetClassifier,
    checkpoints: Sequence[Checkpoint],
    train: EncodedSet,
    example: EncodedSet,
    top: int = 10,
    batch_size: int = 64,
    progress: Progress = no_progress,
) -> Explanation:
    gradients = ExampleGradients.compute(classifier, checkpoints, train, batch_size, progress)
    return gradients.explain(classifier, checkpoints, example, top, batch_size)
