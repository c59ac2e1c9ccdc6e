"""What the coordinator keeps about data sets, jobs, their events and review decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gbair.core.data import ColumnNames
from gbair.core.recovery_state import RecoveryState
from gbair.coordinator.spec import JobSpec

SPLITS = ("train", "validation", "test")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class DatasetRecord(_Record):
    dataset_id: str
    tenant: str
    name: str
    format: Literal["csv", "jsonl"]
    columns: ColumnNames
    train_size: int
    validation_size: int
    test_size: int
    label_names: list[str]
    bytes: int
    folder: Path
    created_at: str
    original_labels: dict[str, str] = {}
    """Training id -> its label before the review of the job this data set was made from (RerunWithDecisions),
    for the rows whose label that review changed."""

    def file(self, split: str) -> Path | None:
        """The uploaded file of `split`, or None where that split was not uploaded."""
        path = self.folder / f"{split}.{self.format}"
        return path if path.is_file() else None


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobRecord(_Record):
    job_id: str
    tenant: str
    request_id: str
    spec: JobSpec
    status: JobStatus
    error: str = ""
    created_at: str
    updated_at: str
    state: RecoveryState | None = None
    """The finished rounds; None before the first round has finished."""
    trained_round: int | None = None
    """The round whose training is saved in the job folder and not yet scored."""
    cancel_requested: bool = False
    report_json: str = ""
    parent_job_id: str = ""
    """The job whose reviewed training set this one runs on (RerunWithDecisions); empty for a submitted job."""


class JobEvent(_Record):
    status: JobStatus
    phase: str
    round: int = 0
    fraction: float = 0.0
    metrics: dict | None = None
    """A `RoundReport` without its flagged ids, on 'round' events."""
    message: str = ""


class ReviewDecision(_Record):
    decision: Literal["accept", "reject", "set_label"]
    label: str = ""
