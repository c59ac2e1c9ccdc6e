"""Uploaded data sets: files written to a partial folder in the tenant's folder as they stream in, checked
by the core loader, then renamed to the data set's id. A rejected upload leaves nothing behind, and the
partial folder of an upload that a killed coordinator left is recognisable by its name and removed later
(`remove_stale_partial_uploads`)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
import uuid
from pathlib import Path

from gbair.core.data import ColumnNames, DataError, DataSplits, load_splits
from gbair.coordinator.errors import InvalidArgument, ResourceExhausted
from gbair.coordinator.records import SPLITS, DatasetRecord, now

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PARTIAL_PREFIX = "partial-"


class DatasetUpload:
    """One upload in progress. Call `add` per chunk, then `finish`; `discard` on any failure."""

    def __init__(self, root: Path, tenant: str, name: str, format: str, columns: ColumnNames, max_bytes: int):
        if not NAME_PATTERN.match(name):
            raise InvalidArgument("info.name", "use 1 to 64 letters, digits, '-', '_' or '.'")
        if format not in ("csv", "jsonl"):
            raise InvalidArgument("info.format", "choose CSV or JSONL")
        self.dataset_id = uuid.uuid4().hex[:16]
        self.tenant = tenant
        self.name = name
        self.format = format
        self.columns = columns
        self.max_bytes = max_bytes
        self.folder = root / tenant / self.dataset_id
        self.partial_folder = root / tenant / f"{PARTIAL_PREFIX}{self.dataset_id}"
        self.partial_folder.mkdir(parents=True)
        self.bytes = 0

    def add(self, split: str, data: bytes) -> None:
        if split not in SPLITS:
            raise InvalidArgument("chunk.split", "choose TRAIN, VALIDATION or TEST")
        self.bytes += len(data)
        if self.bytes > self.max_bytes:
            raise ResourceExhausted(f"the upload is larger than this server's limit of {self.max_bytes} bytes")
        with (self.partial_folder / f"{split}.{self.format}").open("ab") as handle:
            handle.write(data)

    def finish(self) -> DatasetRecord:
        """Check the files, then move them to the data set's folder; the record points there."""
        if not (self.partial_folder / f"train.{self.format}").is_file():
            raise InvalidArgument("chunk.split", "the upload has no TRAIN data")
        record = DatasetRecord(
            dataset_id=self.dataset_id, tenant=self.tenant, name=self.name, format=self.format, columns=self.columns,
            train_size=0, validation_size=0, test_size=0, label_names=[], bytes=self.bytes, folder=self.partial_folder,
            created_at=now(),
        )
        splits = load_dataset(record)
        _check_ids_are_unique_across_splits(splits)
        self.partial_folder.rename(self.folder)
        return record.model_copy(update={
            "train_size": len(splits.train),
            "validation_size": len(splits.validation),
            "test_size": len(splits.test) if splits.test is not None else 0,
            "label_names": splits.label_names,
            "folder": self.folder,
        })

    def discard(self) -> None:
        """Remove the files, wherever the upload got to: still partial, or renamed but not recorded."""
        shutil.rmtree(self.partial_folder, ignore_errors=True)
        shutil.rmtree(self.folder, ignore_errors=True)


def _check_ids_are_unique_across_splits(splits: DataSplits) -> None:
    """An id in two files would make ExplainExample and the review pick one of the two rows silently."""
    first_split: dict[str, str] = {}
    for split, dataset in (("train", splits.train), ("validation", splits.validation), ("test", splits.test)):
        if dataset is None:
            continue
        for example_id in dataset.ids:
            other = first_split.setdefault(example_id, split)
            if other != split:
                raise InvalidArgument(
                    split, f"id '{example_id}' is in both the {other} and the {split} file; ids must be unique across files"
                )


def remove_stale_partial_uploads(root: Path, older_than_s: float) -> list[Path]:
    """Partial upload folders untouched for `older_than_s`: left by a coordinator killed mid-upload.
    A live upload writes every chunk, so its folder is recent (another coordinator may share the folder)."""
    cutoff = time.time() - older_than_s
    removed = []
    for folder in root.glob(f"*/{PARTIAL_PREFIX}*"):
        try:
            stale = _last_write(folder) < cutoff
        except FileNotFoundError:  # finished or discarded meanwhile
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _last_write(folder: Path) -> float:
    return max(p.stat().st_mtime for p in (folder, *folder.iterdir()))


def load_dataset(
    record: DatasetRecord, train_size: int | None = None, val_size: int | None = None, seed: int = 0
) -> DataSplits:
    """The splits of a stored data set; bad data raises InvalidArgument naming the split and row."""
    files = {split: record.file(split) for split in SPLITS}
    try:
        splits = load_splits(
            str(files["train"]), train_size=train_size, val_size=val_size, seed=seed,
            validation_path=files["validation"], test_path=files["test"], columns=record.columns,
        )
    except DataError as error:
        split = next((s for s, path in files.items() if path is not None and str(path) == error.path), "data")
        where = f"{split} file" + (f", row {error.row}" if error.row is not None else "")
        raise InvalidArgument(f"{split}", f"{where}: {error.problem}") from None
    except ValueError as error:
        raise InvalidArgument("data", str(error)) from None
    return dataclasses.replace(splits, name=record.name)
