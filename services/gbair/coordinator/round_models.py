"""What ExplainExample needs for one round of a job, built once and kept: the job's data, the round's
training set and the round's explainer (core's `RoundExplainer`, in this process or on the cluster)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from gbair.core.data import TextDataset
from gbair.core.influence import Explanation
from gbair.core.recovery_state import TrainedRound
from gbair.core.round_explainer import Explainer, ExplainerFactory, RankedSet, RoundExplainer
from gbair.coordinator.jobs import JobData, job_data, trained_round_path
from gbair.coordinator.records import JobRecord
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store


@dataclass
class RoundModel:
    data: JobData
    train_set: TextDataset
    explainer: Explainer
    predicted_labels: dict[str, str]
    """The round's model's prediction for each example of the round's training set and the validation set."""

    def ranked_set(self, against: RankedSet) -> TextDataset:
        """The examples an explanation against `against` ranks, with the labels they were scored with."""
        return self.train_set if against == "train" else self.data.splits.validation

    def explain(self, example: TextDataset, top: int, against: RankedSet = "train") -> Explanation:
        return self.explainer.explain(example, top, against)


def load_round_model(
    store: Store, settings: CoordinatorSettings, job: JobRecord, round_index: int,
    explainer: ExplainerFactory = RoundExplainer,
) -> RoundModel:
    """`job` has finished round `round_index`."""
    data = job_data(store, settings, job)
    trained = TrainedRound.load(trained_round_path(settings, job.job_id, round_index))
    train_set = job.state.train_set(data.splits.train, data.config.recovery.action, round_index)
    built = explainer(data.config, data.splits.label_names, trained.training.checkpoints, train_set, data.splits.validation)
    return RoundModel(data, train_set, built, built.predicted_labels())


RoundLoader = Callable[[Store, CoordinatorSettings, JobRecord, int], RoundModel]


class RoundModels:
    """The `capacity` rounds used last, each built once even when many threads ask for it at once.
    Each explainer holds a backbone and C x (N + V) x P gradients (checkpoints, training and, once asked
    for, validation examples, PET parameters), in this process or, under `backend: ray`, in a Ray actor
    that ends when its round leaves the cache."""

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
