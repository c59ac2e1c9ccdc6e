"""Between protobuf messages and the coordinator's records."""

from __future__ import annotations

from gbair.core.data import ColumnNames
from gbair.core.influence import Influence
from gbair.core.report import RoundReport
from gbair.coordinator.records import DatasetRecord, JobEvent, JobRecord, JobStatus, ReviewDecision
from gbair.coordinator.errors import InvalidArgument
from gbair.coordinator.review import UNDECIDED, Suspect, SuspectQuery
from gbair.coordinator.spec import JobSpec, validated_spec
from gbair.core.data import TextDataset
from gbair.v1 import gbair_pb2 as pb

FORMATS = {pb.CSV: "csv", pb.JSONL: "jsonl"}
SPLITS = {pb.TRAIN: "train", pb.VALIDATION: "validation", pb.TEST: "test"}
STATUSES = {
    JobStatus.QUEUED: pb.QUEUED, JobStatus.RUNNING: pb.RUNNING, JobStatus.SUCCEEDED: pb.SUCCEEDED,
    JobStatus.FAILED: pb.FAILED, JobStatus.CANCELLED: pb.CANCELLED,
}
DECISIONS = {pb.ACCEPT: "accept", pb.REJECT: "reject", pb.SET_LABEL: "set_label"}
_DECISION_MESSAGES = {name: value for value, name in DECISIONS.items()}
_SUSPECT_ORDERS = {
    pb.SUSPECT_ORDER_UNSPECIFIED: "round", pb.SCORE_DESCENDING: "score_descending", pb.SCORE_ASCENDING: "score_ascending",
}
_RANKED_SETS = {pb.SPLIT_UNSPECIFIED: "train", pb.TRAIN: "train", pb.VALIDATION: "validation"}
_OPTIONAL_SPEC_FIELDS = [f.name for f in pb.JobSpec.DESCRIPTOR.fields if f.has_presence and f.name != "dataset_id"]


def columns(message: pb.ColumnNames) -> ColumnNames:
    return ColumnNames(
        text=message.text or "text", text_pair=message.text_pair or None, label=message.label or "label", id=message.id or None
    )


def dataset(record: DatasetRecord) -> pb.Dataset:
    return pb.Dataset(
        dataset_id=record.dataset_id, name=record.name, format={v: k for k, v in FORMATS.items()}[record.format],
        train_size=record.train_size, validation_size=record.validation_size, test_size=record.test_size,
        label_names=record.label_names, bytes=record.bytes,
    )


def spec(message: pb.JobSpec) -> JobSpec:
    fields = {name: getattr(message, name) for name in _OPTIONAL_SPEC_FIELDS if message.HasField(name)}
    return validated_spec({"dataset_id": message.dataset_id, **fields})


def spec_message(value: JobSpec) -> pb.JobSpec:
    return pb.JobSpec(**{k: v for k, v in value.model_dump().items() if v is not None})


def round_metrics(report: RoundReport | dict) -> pb.RoundMetrics:
    row = report if isinstance(report, dict) else {**report.model_dump(), "flagged": len(report.flagged_ids)}
    return pb.RoundMetrics(
        round=row["round"], train_size=row["train_size"], val_accuracy=row["val_accuracy"],
        test_accuracy=row["test_accuracy"], misclassified_val=row["misclassified_val"], flagged=row["flagged"],
        flagged_corrupted=row["flagged_corrupted"], train_seconds=row["timings"]["train_s"],
        influence_seconds=row["timings"]["influence_s"], val_loss=row.get("val_loss"),
        val_change_p_value=row.get("val_change_p_value"), val_accuracies=row.get("val_accuracies") or [],
        model_training=row.get("model_training", 0), test_accuracies=row.get("test_accuracies") or [],
        class_short_of_labels=row.get("class_short_of_labels"),
    )


def job(record: JobRecord, with_report: bool = True) -> pb.Job:
    rounds = record.state.rounds if record.state else []
    return pb.Job(
        job_id=record.job_id, request_id=record.request_id, spec=spec_message(record.spec),
        status=STATUSES[record.status], error=record.error, rounds=[round_metrics(r) for r in rounds],
        best_round=record.state.best_round if rounds else None, created_at=record.created_at,
        updated_at=record.updated_at, report_json=record.report_json if with_report else "",
        parent_job_id=record.parent_job_id,
    )


def event(job_id: str, value: JobEvent) -> pb.JobEvent:
    return pb.JobEvent(
        job_id=job_id, status=STATUSES[value.status], phase=value.phase, round=value.round, fraction=value.fraction,
        metrics=round_metrics(value.metrics) if value.metrics else None, message=value.message,
    )


def suspect(row: Suspect) -> pb.Suspect:
    return pb.Suspect(
        example_id=row.example_id, round=row.round, rank=row.rank, score=row.score, given_label=row.given_label,
        suggested_label=row.suggested_label, text=row.text, text_pair=row.text_pair,
        decision=_DECISION_MESSAGES[row.decision.decision] if row.decision else pb.DECISION_UNSPECIFIED,
        decided_label=row.decision.label if row.decision else "", original_label=row.original_label,
        probabilities=row.probabilities,
    )


def suspect_query(request: pb.ListSuspectsRequest) -> SuspectQuery:
    """The order and filters of a ListSuspects request; the given label is checked against the data later."""
    if request.order not in _SUSPECT_ORDERS:
        raise InvalidArgument("order", "choose SCORE_DESCENDING, SCORE_ASCENDING or leave it unset (round, then rank)")
    if request.HasField("round") and request.round < 0:
        raise InvalidArgument("round", "must be 0 or more")
    decision = None
    if request.HasField("decision"):
        if request.decision != pb.DECISION_UNSPECIFIED and request.decision not in DECISIONS:
            raise InvalidArgument("decision", "choose ACCEPT, REJECT, SET_LABEL or DECISION_UNSPECIFIED (not decided yet)")
        decision = DECISIONS.get(request.decision, UNDECIDED)
    return SuspectQuery(
        order=_SUSPECT_ORDERS[request.order],
        round=request.round if request.HasField("round") else None,
        given_label=request.given_label if request.HasField("given_label") else None,
        decision=decision,
    )


def ranked_set(against: int) -> str:
    """Which examples ExplainExample ranks: the training set (TRAIN, unset) or the validation set."""
    if against not in _RANKED_SETS:
        raise InvalidArgument("against", "choose TRAIN, VALIDATION or leave it unset (TRAIN)")
    return _RANKED_SETS[against]


def decision(message: pb.ReviewDecision) -> ReviewDecision | None:
    """None for an unset decision, which the servicer reports with the decision's position."""
    if message.decision not in DECISIONS:
        return None
    return ReviewDecision(decision=DECISIONS[message.decision], label=message.label)


def influences(items: list[Influence], ranked: TextDataset, predicted_labels: dict[str, str]) -> list[pb.Influence]:
    positions = ranked.positions([i.example_id for i in items])
    return [
        pb.Influence(
            example_id=i.example_id, score=i.score, label=ranked.label_names[ranked.labels[p]], text=ranked.texts[p],
            predicted_label=predicted_labels[i.example_id],
            text_pair=ranked.text_pairs[p] if ranked.text_pairs is not None else "",
        )
        for i, p in zip(items, positions)
    ]
