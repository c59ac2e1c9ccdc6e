"""RerunWithDecisions: a job's reviewed training set (ExportCleanedDataset's rows and labels) stored as a
new data set of its tenant, beside the job's validation and test data, and a new job with the job's spec
on it. The new data set records the label each changed row had before, so the new job's suspects can
show it."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

from gbair.core.data import TextDataset, write_dataset
from gbair.coordinator.datasets import DatasetUpload
from gbair.coordinator.errors import InvalidArgument, ServiceError
from gbair.coordinator.jobs import JobData, job_data
from gbair.coordinator.records import DatasetRecord, JobRecord
from gbair.coordinator.results import succeeded
from gbair.coordinator.review import reviewed_train_set
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store

NAME_SUFFIX = "-reviewed"


def rerun_with_decisions(store: Store, settings: CoordinatorSettings, parent: JobRecord, request_id: str) -> JobRecord:
    """The job this request id made, else a new one on `parent`'s reviewed training set."""
    made = store.job_of_request(parent.tenant, request_id)
    if made is not None:
        if made.parent_job_id != parent.job_id:
            raise InvalidArgument("request_id", f"'{request_id}' was already used for job {made.job_id}, not a rerun of '{parent.job_id}'")
        return made
    succeeded(parent, "reruns need")
    # Refused before the files are written; checked again when the data set is recorded.
    store.check_dataset_limits(parent.tenant, 1, settings.max_datasets_per_tenant, settings.max_dataset_bytes_per_tenant)
    data = job_data(store, settings, parent)
    source = store.dataset(parent.tenant, parent.spec.dataset_id)
    dataset = _reviewed_dataset(store, settings, parent, data, source)
    # The new data set is the parent's sampled (and, in experiments, corrupted) training set already, and
    # holds the validation set the parent carved out of its training file, if it carved one.
    spec = parent.spec.model_copy(update={
        "dataset_id": dataset.dataset_id, "train_size": None, "corrupt": 0.0,
        "val_size": parent.spec.val_size if source.file("validation") else None,
    })
    try:
        job, created = store.create_rerun_job(
            uuid.uuid4().hex[:16], parent.tenant, request_id, spec, parent.job_id, dataset, settings.max_queued_jobs,
            settings.max_datasets_per_tenant, settings.max_dataset_bytes_per_tenant,
        )
    except ServiceError:  # refused: nothing was recorded
        shutil.rmtree(dataset.folder, ignore_errors=True)
        raise
    # A Redis error above leaves the files, as the script may have run and recorded them.
    if not created:  # a concurrent rerun with this request id came first, with its own data set
        shutil.rmtree(dataset.folder, ignore_errors=True)
    return job


def _reviewed_dataset(
    store: Store, settings: CoordinatorSettings, parent: JobRecord, data: JobData, source: DatasetRecord
) -> DatasetRecord:
    """The new data set's files, checked and moved into place like an upload's; not yet recorded."""
    given = data.splits.train
    reviewed = reviewed_train_set(parent.state, given, data.config.recovery.action, store.reviews(parent.job_id))
    upload = DatasetUpload(
        settings.datasets_dir, parent.tenant, source.name[: 64 - len(NAME_SUFFIX)] + NAME_SUFFIX, source.format,
        source.columns, settings.max_upload_bytes,
    )
    try:
        with TemporaryDirectory(prefix="gbair-rerun-") as folder:
            upload.add("train", _written(reviewed, source, Path(folder) / "train"))
            validation = source.file("validation")
            upload.add("validation", validation.read_bytes() if validation else _written(data.splits.validation, source, Path(folder) / "validation"))
            if test := source.file("test"):
                upload.add("test", test.read_bytes())
        record = upload.finish()
    except BaseException:
        upload.discard()
        raise
    return record.model_copy(update={"original_labels": _original_labels(reviewed, given, source)})


def _written(dataset: TextDataset, source: DatasetRecord, path: Path) -> bytes:
    """`dataset` in the data set's format. Ids that were row numbers of the training file are written into
    an "id" column, which the loader reads by default, so the rows keep their ids in the new files."""
    if source.columns.id is None and "id" not in dataset.records[0]:
        dataset = replace(dataset, records=[{**record, "id": i} for record, i in zip(dataset.records, dataset.ids)])
    return write_dataset(dataset, source.format, path.with_suffix(f".{source.format}")).read_bytes()


def _original_labels(reviewed: TextDataset, given: TextDataset, source: DatasetRecord) -> dict[str, str]:
    """Each reviewed row whose label differs from the one it had before the parent job: its label as given
    to the parent, or, where the parent's data set was itself a rerun, the label before that one's parent."""
    before = {i: source.original_labels.get(i, given.label_names[y]) for i, y in zip(given.ids, given.labels)}
    return {
        i: before[i] for i, y in zip(reviewed.ids, reviewed.labels) if reviewed.label_names[y] != before[i]
    }
