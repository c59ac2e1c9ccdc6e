"""The examples a job flagged, as a person reviews them, and the training set their decisions make."""

from __future__ import annotations

from dataclasses import dataclass

from gbair.core.config import CleaningAction
from gbair.core.data import TextDataset
from gbair.core.recovery_state import RecoveryState
from gbair.coordinator.errors import InvalidArgument
from gbair.coordinator.records import ReviewDecision


@dataclass(frozen=True)
class Suspect:
    example_id: str
    round: int
    rank: int
    score: float
    given_label: str
    suggested_label: str
    text: str
    text_pair: str
    decision: ReviewDecision | None


def suspects(state: RecoveryState, given: TextDataset, reviews: dict[str, ReviewDecision]) -> list[Suspect]:
    """Every flagged example, round by round, most suspicious first within a round."""
    rows = []
    for report in state.rounds:
        for rank, (example_id, score, position) in enumerate(
            zip(report.flagged_ids, report.flagged_scores, given.positions(report.flagged_ids)), start=1
        ):
            rows.append(Suspect(
                example_id=example_id,
                round=report.round,
                rank=rank,
                score=score,
                given_label=given.label_names[given.labels[position]],
                suggested_label=report.relabels.get(example_id, ""),
                text=given.texts[position],
                text_pair=given.text_pairs[position] if given.text_pairs is not None else "",
                decision=reviews.get(example_id),
            ))
    return rows


def check_decisions(state: RecoveryState, given: TextDataset, decisions: list[tuple[str, ReviewDecision]]) -> None:
    flagged = {i for report in state.rounds for i in report.flagged_ids}
    for k, (example_id, decision) in enumerate(decisions):
        if example_id not in flagged:
            raise InvalidArgument(f"decisions[{k}].example_id", f"'{example_id}' is not among the job's suspects")
        if decision.decision == "set_label" and decision.label not in given.label_names:
            raise InvalidArgument(f"decisions[{k}].label", f"'{decision.label}' is not a label; choose one of {given.label_names}")
        if decision.decision != "set_label" and decision.label:
            raise InvalidArgument(f"decisions[{k}].label", "a label goes only with SET_LABEL")


def reviewed_train_set(
    state: RecoveryState, given: TextDataset, action: CleaningAction, reviews: dict[str, ReviewDecision]
) -> TextDataset:
    """The best round's training set, changed where a person decided: ACCEPT applies the automatic action
    (removal, or the suggested label), REJECT keeps the example as given, SET_LABEL keeps it with that label."""
    best = state.train_set(given, action, state.best_round)
    best_labels = dict(zip(best.ids, best.labels))
    suggested = {i: name for report in state.rounds for i, name in report.relabels.items()}
    label_index = {name: k for k, name in enumerate(given.label_names)}
    keep, labels = [], []
    for position, (example_id, given_label) in enumerate(zip(given.ids, given.labels)):
        review = reviews.get(example_id)
        if review is None:
            label = best_labels.get(example_id)
        elif review.decision == "reject":
            label = given_label
        elif review.decision == "set_label":
            label = label_index[review.label]
        elif action == "remove":
            label = None
        else:
            label = label_index[suggested[example_id]]
        if label is not None:
            keep.append(position)
            labels.append(label)
    return given.subset(keep).with_labels(labels)
