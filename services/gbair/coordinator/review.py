"""The examples a job flagged, as a person reviews them, and the training set their decisions make."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    """The label in force in its round: relabelled ids are never flagged again, so the label as given."""
    suggested_label: str
    original_label: str
    probabilities: list[float]
    """Empty for rounds scored before the reports kept them."""
    text: str
    text_pair: str
    decision: ReviewDecision | None


UNDECIDED = "undecided"


@dataclass(frozen=True)
class SuspectQuery:
    """Which suspects a page is cut from, in which order. None: no filter on that field."""

    order: Literal["round", "score_descending", "score_ascending"] = "round"
    round: int | None = None
    given_label: str | None = None
    decision: Literal["accept", "reject", "set_label", "undecided"] | None = None


def suspects(
    state: RecoveryState, given: TextDataset, reviews: dict[str, ReviewDecision], original_labels: dict[str, str]
) -> list[Suspect]:
    """Every flagged example, round by round, most suspicious first within a round. `original_labels`
    names the label before a parent job's review changed it (the data set's record of a rerun)."""
    rows = []
    for report in state.rounds:
        probabilities = report.flagged_probabilities or [[] for _ in report.flagged_ids]
        for rank, (example_id, score, position, row_probabilities) in enumerate(
            zip(report.flagged_ids, report.flagged_scores, given.positions(report.flagged_ids), probabilities), start=1
        ):
            given_label = given.label_names[given.labels[position]]
            rows.append(Suspect(
                example_id=example_id,
                round=report.round,
                rank=rank,
                score=score,
                given_label=given_label,
                # Reports written before suggestions were kept for every action hold them only as relabels.
                suggested_label=report.suggested_labels.get(example_id, report.relabels.get(example_id, "")),
                original_label=original_labels.get(example_id, given_label),
                probabilities=row_probabilities,
                text=given.texts[position],
                text_pair=given.text_pairs[position] if given.text_pairs is not None else "",
                decision=reviews.get(example_id),
            ))
    return rows


def select(rows: list[Suspect], query: SuspectQuery, label_names: list[str]) -> list[Suspect]:
    """The rows matching `query`, in its order; ties in score keep round and rank order."""
    if query.given_label is not None and query.given_label not in label_names:
        raise InvalidArgument("given_label", f"'{query.given_label}' is not a label; choose one of {label_names}")
    matching = [
        row for row in rows
        if (query.round is None or row.round == query.round)
        and (query.given_label is None or row.given_label == query.given_label)
        and (query.decision is None or (row.decision.decision if row.decision else UNDECIDED) == query.decision)
    ]
    if query.order == "round":
        return matching
    return sorted(matching, key=lambda row: row.score, reverse=query.order == "score_descending")


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
