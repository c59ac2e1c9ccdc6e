"""A data set as read from its files, before its labels are checked and its splits sampled: each split's
examples, taken from the file's rows by the columns that hold each field.

Ids are the file's id column where there is one (olid, convabuse, user files with an `id` column or
`ColumnNames.id`); otherwise `<split>-<0-based example index in the file, 6 digits>`, with split `train`, `val`
or `test` (e.g. `train-000123`). Both are independent of subsampling. A text pair may be empty (some
DiaSafety contexts got no response); a text may not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from gbair.core.data.dataset import DataError
from gbair.core.data.files import Row, cell, filled_cell


class ColumnNames(BaseModel):
    """Where a user file keeps each field. `id=None` uses an `id` column if the file has one, else
    row-number ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = "text"
    text_pair: str | None = None
    label: str = "label"
    id: str | None = None


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    text_pair: str | None
    label: str
    row: int
    record: dict[str, Any]


@dataclass(frozen=True)
class Split:
    path: Path
    examples: list[Example]


@dataclass(frozen=True)
class Source:
    """A data set as read from its files, before labels are checked and splits are sampled.
    `labels` maps each label as written in the files to its name, in class-index order; None
    means the distinct training labels, sorted."""

    name: str
    format: str
    columns: ColumnNames
    train: Split
    validation: Split | None
    test: Split | None
    labels: dict[str, str] | None


def split_examples(path: Path, rows: list[Row], split: str, columns: ColumnNames) -> list[Example]:
    if not rows:
        raise DataError(path, None, "empty file: no examples")
    id_column = columns.id or ("id" if "id" in rows[0].record else None)
    first_row_of_id: dict[str, int] = {}
    examples = []
    for index, row in enumerate(rows):
        example_id = (
            filled_cell(path, row, id_column, "id") if id_column else f"{split}-{index:06d}"
        )
        if example_id in first_row_of_id:
            first = first_row_of_id[example_id]
            raise DataError(path, row.number, f"duplicate id '{example_id}' (first at row {first})")
        first_row_of_id[example_id] = row.number
        examples.append(
            Example(
                id=example_id,
                text=filled_cell(path, row, columns.text, "text"),
                text_pair=cell(path, row, columns.text_pair) if columns.text_pair else None,
                label=filled_cell(path, row, columns.label, "label"),
                row=row.number,
                record=row.record,
            )
        )
    return examples


def read_split(
    path: Path, rows: Callable[[Path], list[Row]], split: str, columns: ColumnNames
) -> Split:
    return Split(path, split_examples(path, rows(path), split, columns))
