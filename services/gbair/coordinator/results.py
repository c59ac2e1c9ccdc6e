"""What a caller reads out of a job: explanations from a round's saved checkpoints, the reviewed
training set, the best adapter's files."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from gbair.core.data import TextDataset, write_dataset
from gbair.core.influence import Explanation
from gbair.core.recovery_state import RecoveryState
from gbair.coordinator.errors import FailedPrecondition, InvalidArgument, NotFound
from gbair.coordinator.jobs import adapter_folder, job_data
from gbair.coordinator.records import JobRecord, JobStatus
from gbair.coordinator.retention import require_job_folder
from gbair.coordinator.review import reviewed_train_set
from gbair.coordinator.round_models import RankedSet, RoundModels
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store


@dataclass(frozen=True)
class ExplainedExample:
    explanation: Explanation
    round: int
    ranked: TextDataset
    """The examples ranked (the round's training set, or the validation set), to look up the influential
    examples' labels in force and texts."""
    predicted_labels: dict[str, str]
    """The round's model's prediction for each ranked example."""


def finished_rounds(job: JobRecord) -> RecoveryState:
    if job.state is None or not job.state.rounds:
        raise FailedPrecondition(f"job '{job.job_id}' has not finished a round yet ({job.status.value})")
    return job.state


def explain(
    store: Store, settings: CoordinatorSettings, models: RoundModels, job: JobRecord, example_id: str,
    round_index: int | None, top: int, against: RankedSet = "train",
) -> ExplainedExample:
    state = finished_rounds(job)
    require_job_folder(settings, job)
    # Checked on every call, as the cache cannot see a data set deleted here or by another coordinator.
    store.dataset(job.tenant, job.spec.dataset_id)
    round_index = state.best_round if round_index is None else round_index
    if not 0 <= round_index < len(state.rounds):
        raise InvalidArgument("round", f"job '{job.job_id}' has rounds 0 to {len(state.rounds) - 1}")
    model = models.get(store, settings, job, round_index)
    splits = model.data.splits
    # The round's training set first, so a training example carries the label in force in that round; an
    # example removed by then, the label it was given.
    example = next(
        (dataset.subset(dataset.positions([example_id]))
         for dataset in (model.train_set, splits.train, splits.validation, splits.test)
         if dataset is not None and example_id in dataset.ids),
        None,
    )
    if example is None:
        raise NotFound(f"no example '{example_id}' in the training, validation or test data of job '{job.job_id}'")
    return ExplainedExample(model.explain(example, top, against), round_index, model.ranked_set(against), model.predicted_labels)


def export_cleaned(store: Store, settings: CoordinatorSettings, job: JobRecord) -> Path:
    """The reviewed training set written, in the uploaded format, to a fresh temporary folder."""
    succeeded(job)
    data = job_data(store, settings, job)
    cleaned = reviewed_train_set(job.state, data.splits.train, data.config.recovery.action, store.reviews(job.job_id))
    folder = Path(tempfile.mkdtemp(prefix=f"gbair-export-{job.job_id}-"))
    return write_dataset(cleaned, data.splits.format, folder)


def adapter_files(settings: CoordinatorSettings, job: JobRecord) -> tuple[Path, list[Path]]:
    succeeded(job)
    require_job_folder(settings, job)
    folder = adapter_folder(settings, job.job_id)
    return folder, sorted(p for p in folder.rglob("*") if p.is_file())


def succeeded(job: JobRecord, needs: str = "exports need") -> None:
    if job.status != JobStatus.SUCCEEDED:
        raise FailedPrecondition(f"job '{job.job_id}' is {job.status.value}; {needs} a job that succeeded")
