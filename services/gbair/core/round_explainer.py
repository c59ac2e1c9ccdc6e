"""TracIn explanations against one finished round's model: built once from the round's checkpoints, it keeps
the model's prediction for every training and validation example and every training example's gradient
at each checkpoint (the validation examples' too, from the first explanation against them). Building pays
for the backbone, a forward pass and a gradient pass over the training set; the first explanation against
the validation set, a gradient pass over it; each later one, one example's gradients."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from gbair.core.config import GbairConfig
from gbair.core.data.dataset import TextDataset
from gbair.core.evaluation import predict_probabilities
from gbair.core.influence import ExampleGradients, Explanation
from gbair.core.model.inputs import encode
from gbair.core.model.pet import PetClassifier
from gbair.core.training import Checkpoint

RankedSet = Literal["train", "validation"]


class Explainer(Protocol):
    """A `RoundExplainer`, or a stand-in for one that lives elsewhere (a Ray actor)."""

    def predicted_labels(self) -> dict[str, str]: ...

    def explain(self, example: TextDataset, top: int, against: RankedSet = "train") -> Explanation: ...


ExplainerFactory = Callable[[GbairConfig, Sequence[str], Sequence[Checkpoint], TextDataset, TextDataset], Explainer]
"""Builds a round's explainer from (config, label names, checkpoints, the round's training set, validation)."""


class RoundExplainer:
    def __init__(
        self,
        config: GbairConfig,
        label_names: Sequence[str],
        checkpoints: Sequence[Checkpoint],
        train_set: TextDataset,
        validation: TextDataset,
    ):
        """`train_set` is the round's, with the labels in force in it; the last checkpoint is the round's model."""
        self._classifier = PetClassifier.build(config.model, list(label_names), seed=config.train.seed)
        self._checkpoints = list(checkpoints)
        self._batch_size = config.influence.batch_size
        self._validation = validation
        self._classifier.load_pet_state(self._checkpoints[-1].state)
        self._predicted_labels: dict[str, str] = {}
        for examples in (train_set, validation):
            probabilities = predict_probabilities(self._classifier, encode(self._classifier, examples), self._batch_size)
            predicted = probabilities.argmax(dim=1).tolist()
            self._predicted_labels |= {i: examples.label_names[k] for i, k in zip(examples.ids, predicted)}
        self._train_gradients = ExampleGradients.compute(
            self._classifier, self._checkpoints, encode(self._classifier, train_set), self._batch_size
        )
        self._validation_gradients: ExampleGradients | None = None
        # Explaining loads each checkpoint into the classifier in turn, so one explanation at a time.
        self._lock = threading.Lock()

    def predicted_labels(self) -> dict[str, str]:
        """The round's model's prediction for each example of the round's training set and the validation set."""
        return dict(self._predicted_labels)

    def explain(self, example: TextDataset, top: int, against: RankedSet = "train") -> Explanation:
        with self._lock:
            encoded = encode(self._classifier, example)
            gradients = self._gradients(against)
            return gradients.explain(self._classifier, self._checkpoints, encoded, top, self._batch_size)

    def _gradients(self, against: RankedSet) -> ExampleGradients:
        """Called holding the lock. The validation gradients wait for the first caller who asks for them."""
        if against == "train":
            return self._train_gradients
        if self._validation_gradients is None:
            validation = encode(self._classifier, self._validation)
            self._validation_gradients = ExampleGradients.compute(
                self._classifier, self._checkpoints, validation, self._batch_size
            )
        return self._validation_gradients
