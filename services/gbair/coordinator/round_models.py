"""What ExplainExample needs for one round of a job, built once and kept: the job's data, the round's
training set, the classifier with the round's checkpoints, the round's model's prediction for every
training and validation example, and every training example's gradient at each checkpoint (the
validation examples' too, from the first explanation against them). The first explanation of a round
pays for the backbone, a forward pass and a gradient pass over the training set; the first against the
validation set, a gradient pass over it; each later one, for one example's gradients."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

from gbair.core.data import TextDataset
from gbair.core.evaluation import predict_probabilities
from gbair.core.influence import ExampleGradients, Explanation
from gbair.core.model.inputs import encode
from gbair.core.model.pet import PetClassifier
from gbair.core.recovery_state import TrainedRound
from gbair.core.training import Checkpoint
from gbair.coordinator.jobs import JobData, job_data, trained_round_path
from gbair.coordinator.records import JobRecord
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store

RankedSet = Literal["train", "validation"]


@dataclass
class RoundModel:
    data: JobData
    train_set: TextDataset
    classifier: PetClassifier
    checkpoints: list[Checkpoint]
    train_gradients: ExampleGradients
    predicted_labels: dict[str, str]
    """The round's model's prediction for each example of the round's training set and the validation set."""
    batch_size: int
    _validation_gradients: ExampleGradients | None = None
    # Explaining loads each checkpoint into the classifier in turn, so one explanation at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ranked_set(self, against: RankedSet) -> TextDataset:
        """The examples an explanation against `against` ranks, with the labels they were scored with."""
        return self.train_set if against == "train" else self.data.splits.validation

    def explain(self, example: TextDataset, top: int, against: RankedSet = "train") -> Explanation:
        with self._lock:
            encoded = encode(self.classifier, example)
            return self._gradients(against).explain(self.classifier, self.checkpoints, encoded, top, self.batch_size)

    def _gradients(self, against: RankedSet) -> ExampleGradients:
        """Called holding the lock. The validation gradients wait for the first caller who asks for them."""
        if against == "train":
            return self.train_gradients
        if self._validation_gradients is None:
            validation = encode(self.classifier, self.data.splits.validation)
            self._validation_gradients = ExampleGradients.compute(self.classifier, self.checkpoints, validation, self.batch_size)
        return self._validation_gradients


def load_round_model(store: Store, settings: CoordinatorSettings, job: JobRecord, round_index: int) -> RoundModel:
    """`job` has finished round `round_index`."""
    data = job_data(store, settings, job)
    config = data.config
    trained = TrainedRound.load(trained_round_path(settings, job.job_id, round_index))
    classifier = PetClassifier.build(config.model, data.splits.label_names, seed=config.train.seed)
    train_set = job.state.train_set(data.splits.train, config.recovery.action, round_index)
    checkpoints = trained.training.checkpoints
    batch_size = config.influence.batch_size
    classifier.load_pet_state(trained.training.final_state)
    predicted_labels = {}
    for examples in (train_set, data.splits.validation):
        probabilities = predict_probabilities(classifier, encode(classifier, examples), batch_size)
        predicted_labels |= {i: examples.label_names[k] for i, k in zip(examples.ids, probabilities.argmax(dim=1).tolist())}
    gradients = ExampleGradients.compute(classifier, checkpoints, encode(classifier, train_set), batch_size)
    return RoundModel(data, train_set, classifier, checkpoints, gradients, predicted_labels, batch_size)


RoundLoader = Callable[[Store, CoordinatorSettings, JobRecord, int], RoundModel]


class RoundModels:
    """The `capacity` rounds used last, each built once even when many threads ask for it at once.
    Each holds a backbone and C x (N + V) x P gradients (checkpoints, training and, once asked for,
    validation examples, PET parameters)."""

    def __init__(self, capacity: int, load: RoundLoader = load_round_model):
        self.capacity = capacity
        self.load = load
        self._lock = threading.Lock()
        self._rounds: OrderedDict[tuple[str, int], Future[RoundModel]] = OrderedDict()

    def get(self, store: Store, settings: CoordinatorSettings, job: JobRecord, round_index: int) -> RoundModel:
        key = (job.job_id, round_index)
        with self._lock:
            pending = self._rounds.get(key)
            building = pending is None
            if building:
                pending = self._rounds[key] = Future()
                while len(self._rounds) > self.capacity:
                    self._rounds.popitem(last=False)
            self._rounds.move_to_end(key)
        if building:
            try:
                pending.set_result(self.load(store, settings, job, round_index))
            except BaseException as error:
                # Not kept: the next call tries again (the round's files may be back, or the bug fixed).
                with self._lock:
                    if self._rounds.get(key) is pending:
                        del self._rounds[key]
                pending.set_exception(error)
                raise
        return pending.result()
