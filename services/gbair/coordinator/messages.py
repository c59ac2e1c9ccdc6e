"""Between protobuf messages and the coordinator's records."""

from __future__ import annotations

from gbair.core.data import ColumnNames
from gbair.core.influence import Influence
from gbair.core.report import RoundReport
from gbair.coordinator.records import DatasetRecord, JobEvent, JobRecord, JobStatus, ReviewDecision
from gbair.coordinator.review import Suspect
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
        influence_seconds=row["timings"]["influence_s"],
    )


def job(record: JobRecord, with_report: bool = True) -> pb.Job:
    rounds = record.state.rounds if record.state else []
    return pb.Job(
        job_id=record.job_id, request_id=record.request_id, spec=spec_message(record.spec),
        status=STATUSES[record.status], error=record.error, rounds=[round_metrics(r) for r in rounds],
        best_round=record.state.best_round if rounds else None, created_at=record.created_at,
        updated_at=record.updated_at, report_json=record.report_json if with_report else "",
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
        decided_label=row.decision.label if row.decision else "",
    )


def decision(message: pb.ReviewDecision) -> ReviewDecision | None:
    """None for an unset decision, which the servicer reports with the decision's position."""
    if message.decision not in DECISIONS:
        return None
    return ReviewDecision(decision=DECISIONS[message.decision], label=message.label)


def influences(items: list[Influence], train_set: TextDataset) -> list[pb.Influence]:
    positions = train_set.positions([i.train_id for i in items])
    return [
        pb.Influence(example_id=i.train_id, score=i.score, label=train_set.label_names[train_set.labels[p]], text=train_set.texts[p])
        for i, p in zip(items, positions)
    ]
