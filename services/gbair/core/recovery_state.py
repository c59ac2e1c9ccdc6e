"""What a G-BAIR run has done so far, in a form that can be saved and picked up again: the finished
rounds (a `RecoveryState`, JSON) and a trained but not yet scored round (a `TrainedRound`, a torch file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict

from gbair.core.config import CleaningAction
from gbair.core.data.dataset import TextDataset
from gbair.core.model.pet import PetState
from gbair.core.report import RoundReport
from gbair.core.training import Checkpoint, TrainingResult


class RecoveryState(BaseModel):
    """The rounds reported so far determine everything else: the next round's training set (their
    removals or relabels), the best round and the rounds without gain."""

    model_config = ConfigDict(frozen=True)

    corrupted_ids: list[str] = []
    true_labels: dict[str, str] = {}
    """The true label name of each corrupted id (experiments with synthetic noise only)."""
    rounds: list[RoundReport] = []
    finished: bool = False

    @property
    def next_round(self) -> int:
        return len(self.rounds)

    @property
    def best_round(self) -> int | None:
        """The first round with the highest validation accuracy."""
        if not self.rounds:
            return None
        return max(self.rounds, key=lambda r: (r.val_accuracy, -r.round)).round

    @property
    def relabeled_ids(self) -> set[str]:
        return {i for r in self.rounds for i in r.relabels}

    def wrong_labels(self, given: TextDataset, in_force: TextDataset, ids: list[str]) -> int:
        """How many of `ids` carry, in `in_force` (a round's training set), a label other than their true one
        (`true_labels`, else the label as `given`): a corrupted example relabelled to its true label is no
        longer wrong, and a clean example relabelled away from it now is."""
        true = {i: given.label_names[y] for i, y in zip(given.ids, given.labels)} | self.true_labels
        labels = dict(zip(in_force.ids, in_force.labels))
        return sum(in_force.label_names[labels[i]] != true[i] for i in ids)

    def train_set(self, given: TextDataset, action: CleaningAction, before_round: int | None = None) -> TextDataset:
        """The training set of round `before_round` (default: the next round): `given` less every earlier
        removal, with every earlier relabel."""
        earlier = self.rounds[:before_round]
        if action == "remove":
            return given.without_ids([i for r in earlier for i in r.flagged_ids])
        label_index = {name: k for k, name in enumerate(given.label_names)}
        return given.relabeled({i: label_index[name] for r in earlier for i, name in r.relabels.items()})


@dataclass(frozen=True)
class TrainedRound:
    round: int
    training: TrainingResult
    val_accuracy: float
    test_accuracy: float | None
    errors: list[int]
    """Positions of the misclassified validation examples."""
    val_loss: float | None = None
    """None in rounds saved before it was recorded."""
    val_wrong_ids: list[str] | None = None
    """The misclassified trusted examples that select the round; None in rounds saved before they were
    recorded."""
    val_accuracies: list[float] | None = None
    """Each training's accuracy on those trusted examples, whose mean is `val_accuracy`; None with one training."""
    test_accuracies: list[float] | None = None
    """Each training's test accuracy, where there are several and a test split; `test_accuracy` is the model's."""
    other_trainings_seconds: float = 0.0
    model_training: int = 0
    """Which of the round's trainings is its model (0: the first): the most accurate on the trusted examples
    that select the round, the earliest on a tie. The first is the one scored either way."""
    other_model_state: PetState | None = None
    """The model's final state where it is a further training; the first training's is in `training`."""

    @property
    def model_state(self) -> PetState:
        """The final state of the round's model, the one a job exports."""
        return self.training.final_state if self.other_model_state is None else self.other_model_state

    def save_to(self, path: Path) -> TrainedRound:
        """Write to a temporary name, then rename: a reader never sees half a file."""
        training = self.training
        record = {
            "round": self.round,
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "errors": self.errors,
            "val_loss": self.val_loss,
            "val_wrong_ids": self.val_wrong_ids,
            "val_accuracies": self.val_accuracies,
            "test_accuracies": self.test_accuracies,
            "other_trainings_seconds": self.other_trainings_seconds,
            "model_training": self.model_training,
            "other_model_state": self.other_model_state,
            "initial_state": training.initial_state,
            "checkpoints": [
                {"step": c.step, "epoch": c.epoch, "learning_rate": c.learning_rate, "state": c.state}
                for c in training.checkpoints
            ],
            "epochs": training.epochs,
            "seconds": training.seconds,
            "training_logits": training.training_logits,
        }
        partial = path.with_name(path.name + ".partial")
        torch.save(record, partial)
        partial.replace(path)
        return self

    @classmethod
    def load(cls, path: Path) -> TrainedRound:
        record = torch.load(path, weights_only=True)
        training = TrainingResult(
            initial_state=record["initial_state"],
            checkpoints=[Checkpoint(**c) for c in record["checkpoints"]],
            epochs=record["epochs"],
            seconds=record["seconds"],
            training_logits=record.get("training_logits"),
        )
        return cls(record["round"], training, record["val_accuracy"], record["test_accuracy"], record["errors"],
                   val_loss=record.get("val_loss"), val_wrong_ids=record.get("val_wrong_ids"),
                   val_accuracies=record.get("val_accuracies"), test_accuracies=record.get("test_accuracies"),
                   other_trainings_seconds=record.get("other_trainings_seconds", 0.0),
                   model_training=record.get("model_training", 0), other_model_state=record.get("other_model_state"))
