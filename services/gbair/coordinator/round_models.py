"""What ExplainExample needs for one round of a job, built once and kept: the job's data, the round's
training set, the classifier with the round's checkpoints, and every training example's gradient at
each of them. The first explanation of a round pays for the backbone and a gradient pass over the
training set; each later one, for one example's gradients."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from gbair.core.data import TextDataset
from gbair.core.influence import Explanation, TrainingGradients
from gbair.core.model.inputs import encode
from gbair.core.model.pet import PetClassifier
from gbair.core.recovery_state import TrainedRound
from gbair.core.training import Checkpoint
from gbair.coordinator.jobs import JobData, job_data, trained_round_path
from gbair.coordinator.records import JobRecord
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store


@dataclass
class RoundModel:
    data: JobData
    train_set: TextDataset
    classifier: PetClassifier
    checkpoints: list[Checkpoint]
    gradients: TrainingGradients
    batch_size: int
    # Explaining loads each checkpoint into the classifier in turn, so one explanation at a time.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def explain(self, example: TextDataset, top: int) -> Explanation:
        with self._lock:
            encoded = encode(self.classifier, example)
            return self.gradients.explain(self.classifier, self.checkpoints, encoded, top, self.batch_size)


def load_round_model(store: Store, settings: CoordinatorSettings, job: JobRecord, round_index: int) -> RoundModel:
    """`job` has finished round `round_index`."""
    data = job_data(store, settings, job)
    config = data.config
    trained = TrainedRound.load(trained_round_path(settings, job.job_id, round_index))
    classifier = PetClassifier.build(config.model, data.splits.label_names, seed=config.train.seed)
    train_set = job.state.train_set(data.splits.train, config.recovery.action, round_index)
    checkpoints = trained.training.checkpoints
    batch_size = config.influence.batch_size
    gradients = TrainingGradients.compute(classifier, checkpoints, encode(classifier, train_set), batch_size)
    return RoundModel(data, train_set, classifier, checkpoints, gradients, batch_size)


RoundLoader = Callable[[Store, CoordinatorSettings, JobRecord, int], RoundModel]


class RoundModels:
    """The `capacity` rounds used last, each built once even when many threads ask for it at once.
    Each holds a backbone and C x N x P gradients (checkpoints, training examples, PET parameters)."""

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
