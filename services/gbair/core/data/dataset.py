"""The in-memory form of a labeled text set: columns of ids, texts, labels and the raw records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Bad input data: names the file, the row (1-based, as a person counts) and the problem."""

    def __init__(self, path: str | Path, row: int | None, problem: str):
        self.path = str(path)
        self.row = row
        self.problem = problem
        where = f"{self.path}, row {row}" if row is not None else self.path
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        # Rebuilt from its own fields: a worker process (the benchmarks' pool) sends its error back pickled,
        # and the default would call __init__ with the message alone.
        return type(self), (self.path, self.row, self.problem)


@dataclass(frozen=True)
class TextDataset:
    """Columns of one split. `labels` index into `label_names`; `records` keep each raw input row so
    that a cleaned set can be written back in the format it came in, with the current label written
    into each record's `label_column`."""

    ids: list[str]
    texts: list[str]
    labels: list[int]
    label_names: list[str]
    text_pairs: list[str] | None = None
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    label_column: str = "label"

    def __post_init__(self) -> None:
        n = len(self.ids)
        columns = {"texts": self.texts, "labels": self.labels}
        if self.text_pairs is not None:
            columns["text_pairs"] = self.text_pairs
        if self.records:
            columns["records"] = self.records
        for name, column in columns.items():
            if len(column) != n:
                raise ValueError(f"column {name} has {len(column)} entries, ids has {n}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def subset(self, indices: Sequence[int]) -> TextDataset:
        indices = list(indices)
        return TextDataset(
            ids=[self.ids[i] for i in indices],
            texts=[self.texts[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            label_names=self.label_names,
            text_pairs=None if self.text_pairs is None else [self.text_pairs[i] for i in indices],
            records=[self.records[i] for i in indices] if self.records else [],
            label_column=self.label_column,
        )

    def with_labels(self, labels: Sequence[int]) -> TextDataset:
        return replace(self, labels=list(labels))

    def without_ids(self, ids: Sequence[str]) -> TextDataset:
        drop = set(ids)
        return self.subset([i for i, example_id in enumerate(self.ids) if example_id not in drop])

    def relabeled(self, new_labels: dict[str, int]) -> TextDataset:
        return self.with_labels([new_labels.get(i, y) for i, y in zip(self.ids, self.labels)])

    def positions(self, ids: Sequence[str]) -> list[int]:
        index = {example_id: i for i, example_id in enumerate(self.ids)}
        return [index[i] for i in ids]


@dataclass(frozen=True)
class DataSplits:
    """A training set, a trusted validation set and an optional test set sharing one label space.
    `format` names how the training file was written (see `writers.write_dataset`)."""

    name: str
    train: TextDataset
    validation: TextDataset
    test: TextDataset | None
    format: str

    @property
    def label_names(self) -> list[str]:
        return self.train.label_names
