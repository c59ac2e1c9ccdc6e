"""Why one example is predicted as it is: the training examples whose TracIn score on it is the most
positive (proponents) and the most negative (opponents)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gbair.core.influence.statistics import query_gradients, training_statistics
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier
from gbair.core.progress import Progress, no_progress
from gbair.core.training import Checkpoint


@dataclass(frozen=True)
class Influence:
    train_id: str
    score: float


@dataclass(frozen=True)
class Explanation:
    example_id: str
    proponents: list[Influence]
    opponents: list[Influence]


def explain_example(
    classifier: PetClassifier,
    checkpoints: Sequence[Checkpoint],
    train: EncodedSet,
    example: EncodedSet,
    top: int = 10,
    batch_size: int = 64,
    progress: Progress = no_progress,
) -> Explanation:
    if len(example) != 1:
        raise ValueError(f"explain one example at a time, got {len(example)}")
    queries = query_gradients(classifier, checkpoints, example, batch_size)
    stats = training_statistics(classifier, checkpoints, train, queries, batch_size, progress)
    scores = stats.weighted(stats.dots[:, :, 0]).tolist()
    order = sorted(range(len(scores)), key=scores.__getitem__)
    count = min(top, len(order))
    return Explanation(
        example_id=example.ids[0],
        proponents=[Influence(train.ids[i], scores[i]) for i in reversed(order[-count:])],
        opponents=[Influence(train.ids[i], scores[i]) for i in order[:count]],
    )
