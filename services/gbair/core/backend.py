"""Where a round's model computations run. `Recovery` hands states and encoded data to a `RoundBackend`
and gets tensors and results back; only the backend holds a classifier. `LocalBackend` holds it in this
process; gbair.distributed's backend keeps it on a Ray cluster, so a coordinator there holds no model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch

from gbair.core.config import GbairConfig
from gbair.core.data.dataset import TextDataset
from gbair.core.evaluation import predict_probabilities
from gbair.core.influence import InfluenceStatistics, QueryGradients, query_gradients, suggest_labels, training_statistics
from gbair.core.model.inputs import EncodedSet, encode
from gbair.core.model.pet import PetClassifier, PetState
from gbair.core.neighbours import backbone_embeddings
from gbair.core.progress import Progress, no_progress
from gbair.core.training import Checkpoint, TrainingResult, resolve_device, train_classifier

Queries = Any
"""What `query_gradients` returns and the scoring steps take back: `QueryGradients`, or a backend's
reference to them where they stay on a cluster."""


class TrainingRequest(NamedTuple):
    """One of several trainings a backend may run side by side (`RoundBackend.train_each`)."""

    start: PetState
    train: EncodedSet
    seed: int | None = None
    """The training seed (None: the config's)."""


class RoundBackend(Protocol):
    kind: str
    """The classifier's kind: 'encoder' or 'causal-lm'."""
    num_trainable: int
    initial_state: PetState
    """The seeded, untrained PET state every round and every fold model starts from."""

    def encode(self, dataset: TextDataset) -> EncodedSet: ...

    def train(self, start: PetState, train: EncodedSet, progress: Progress, seed: int | None = None) -> TrainingResult:
        """Train from `start`; `seed` (default: the config's) draws the batch order."""
        ...

    def train_each(self, requests: Sequence[TrainingRequest], progress: Progress) -> list[TrainingResult]:
        """`train` as each request asks, results in the order given: further trainings of a round's data at
        other seeds, or confident learning's fold models. A backend with room for them may run them side by
        side."""
        ...

    def seeded_state(self, seed: int) -> PetState:
        """The untrained state a classifier built with `seed` starts from (`PetClassifier.seeded_state`)."""
        ...

    def discard(self, training: TrainingResult) -> None:
        """Free what the backend stored for a training nobody will read again (on a cluster: its checkpoints)."""
        ...

    def probabilities(self, state: PetState, examples: EncodedSet, progress: Progress = no_progress) -> torch.Tensor:
        """(N, K) class probabilities of the model in `state`."""
        ...

    def query_gradients(self, checkpoints: Sequence[Checkpoint], examples: EncodedSet) -> Queries: ...

    def training_statistics(
        self, checkpoints: Sequence[Checkpoint], train: EncodedSet, queries: Queries, progress: Progress
    ) -> InfluenceStatistics: ...

    def suggest_labels(self, checkpoints: Sequence[Checkpoint], examples: EncodedSet, queries: Queries) -> list[int]: ...

    def embeddings(self, examples: EncodedSet, progress: Progress = no_progress) -> np.ndarray:
        """(N, D) the frozen backbone's own embeddings, without the soft prompt."""
        ...

    def save_adapter(self, state: PetState, directory: Path) -> Path: ...


def train_one_after_another(
    backend: RoundBackend, requests: Sequence[TrainingRequest], progress: Progress
) -> list[TrainingResult]:
    """`backend.train` as each request asks, in the order given."""
    return [backend.train(request.start, request.train, progress, request.seed) for request in requests]


class LocalBackend:
    """Every computation in this process, on one classifier (built from the config unless given; its state
    when given is the initial state)."""

    def __init__(self, config: GbairConfig, label_names: Sequence[str], classifier: PetClassifier | None = None):
        self.config = config
        if classifier is None:
            classifier = PetClassifier.build(config.model, list(label_names), seed=config.train.seed)
        if list(classifier.label_names) != list(label_names):
            raise ValueError(f"the classifier's classes {classifier.label_names} are not the data's {list(label_names)}")
        self.classifier = classifier.to(resolve_device(config.train.device))
        self.kind = classifier.kind
        self.num_trainable = classifier.num_trainable
        self.initial_state = classifier.pet_state()
        self._batch_size = config.influence.batch_size

    def encode(self, dataset: TextDataset) -> EncodedSet:
        return encode(self.classifier, dataset)

    def train(self, start: PetState, train: EncodedSet, progress: Progress, seed: int | None = None) -> TrainingResult:
        self.classifier.load_pet_state(start)
        return train_classifier(self.classifier, train, self.config.with_training_seed(seed).train, progress)

    def train_each(self, requests: Sequence[TrainingRequest], progress: Progress) -> list[TrainingResult]:
        """One after the other: they would share this process's classifier and cores."""
        return train_one_after_another(self, requests, progress)

    def seeded_state(self, seed: int) -> PetState:
        return self.classifier.seeded_state(seed)

    def discard(self, training: TrainingResult) -> None:
        """Its checkpoints are in memory only."""

    def probabilities(self, state: PetState, examples: EncodedSet, progress: Progress = no_progress) -> torch.Tensor:
        self.classifier.load_pet_state(state)
        return predict_probabilities(self.classifier, examples, self._batch_size, progress)

    def query_gradients(self, checkpoints: Sequence[Checkpoint], examples: EncodedSet) -> QueryGradients:
        return query_gradients(self.classifier, checkpoints, examples, self._batch_size)

    def training_statistics(
        self, checkpoints: Sequence[Checkpoint], train: EncodedSet, queries: QueryGradients, progress: Progress
    ) -> InfluenceStatistics:
        return training_statistics(self.classifier, checkpoints, train, queries, self._batch_size, progress)

    def suggest_labels(self, checkpoints: Sequence[Checkpoint], examples: EncodedSet, queries: QueryGradients) -> list[int]:
        return suggest_labels(self.classifier, checkpoints, examples, queries, self._batch_size)

    def embeddings(self, examples: EncodedSet, progress: Progress = no_progress) -> np.ndarray:
        return backbone_embeddings(self.classifier, examples, self._batch_size, progress)

    def save_adapter(self, state: PetState, directory: Path) -> Path:
        self.classifier.load_pet_state(state)
        return self.classifier.save_adapter(directory)
