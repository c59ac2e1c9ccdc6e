"""The record of a G-BAIR run, as written to report.json."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class RoundTimings(BaseModel):
    train_s: float
    influence_s: float
    epochs: int
    checkpoints: int


class RoundReport(BaseModel):
    round: int
    train_size: int
    val_accuracy: float = Field(
        description="Accuracy on the trusted examples that select the round (all of them unless split)."
    )
    val_accuracies: list[float] | None = Field(
        None,
        description="With several trainings of the round's data (`round_trainings`), each one's accuracy on "
        "those trusted examples; `val_accuracy` is their mean. The first training is the one scored: the "
        "other fields describe it, except `test_accuracy`, which is the round's model's (`model_training`).",
    )
    test_accuracies: list[float] | None = Field(
        None, description="With several trainings and a test split, each training's test accuracy, same order."
    )
    model_training: int = Field(
        0,
        description="Which of the round's trainings is its model, the one a job exports if it keeps the round: "
        "the most accurate on the trusted examples that select the round, the earliest on a tie (0: the "
        "first, from the job's seed; j: from seed + 1000 j).",
    )
    val_loss: float | None = Field(
        None,
        description="Mean cross-entropy on the same trusted examples; recorded to study round selection, "
        "which reads the accuracy (absent from reports written before it was recorded).",
    )
    val_wrong_ids: list[str] | None = Field(
        None,
        description="Ids of the trusted examples that select the round which this round's model gets wrong "
        "(absent from reports written before they were recorded).",
    )
    val_change_p_value: float | None = Field(
        None,
        description="McNemar's exact test of this round's errors on those trusted examples against round 0's: "
        "how likely a change in accuracy at least this large is between two equally good models. Above about "
        "0.05 the trusted set cannot tell the two rounds apart. None for round 0 and in older reports.",
    )
    test_accuracy: float | None = Field(description="The round's model's accuracy on the test split, if one was given.")
    misclassified_val: int
    flagged_ids: list[str] = Field(
        description="Ids this round's model flagged; removed or relabeled to form the next round's training set."
    )
    flagged_scores: list[float] = Field(description="Suspicion score of each flagged id, same order.")
    relabels: dict[str, str] = Field(description="Flagged id -> the label name it was given instead (relabel runs).")
    # Defaults let reports and job states written before these fields load.
    suggested_labels: dict[str, str] = Field(
        {},
        description="Flagged id -> the label the flagger finds the most likely other one, for every action: "
        "what a relabel run gives it (then equal to `relabels`), and a reviewer's hint in a remove run.",
    )
    flagged_probabilities: list[list[float]] = Field(
        [],
        description="The round's model's probability of each class (in label_names order) for each flagged "
        "id, same order as flagged_ids.",
    )
    class_short_of_labels: str | None = Field(
        None,
        description="The class in which this round showed the marks of labels taken out of one class (its "
        "share of the training labels below the trusted set's, and the model wrong on its trusted examples more "
        "often than on the others'), where the method reads them (`tracin-class-loss`): the round then ranked "
        "by TracIn's opposition with the loss. None: no marks (ranked by the margin averaged over "
        "training), a method that does not read them, a round not scored, or a report written before this "
        "was recorded. A trusted set balanced by class on imbalanced training data shows the first mark in "
        "every minority class.",
    )
    flagged_corrupted: int | None = Field(
        None,
        description="How many flagged ids had a wrong label in force this round, counting earlier relabels "
        "(experiments with --corrupt only).",
    )
    timings: RoundTimings


class RecoveryReport(BaseModel):
    dataset: str
    method: str
    action: str
    seed: int
    label_names: list[str]
    corrupted_ids: list[str]
    true_labels: dict[str, str] = Field({}, description="The true label of each corrupted id.")
    rounds: list[RoundReport]
    best_round: int
    config: dict

    def write(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=2))
        return path
