"""Read the named data sets (diasafety, sst2, olid, convabuse, banking77) and user .csv/.jsonl files
into `DataSplits`. Which files a named set has, and which folder holds them, is `gbair.named_sets`'
business; a file may be stored gzip-compressed (`NAME.gz`, as in the package's bundled sets).

Conventions
- Rows are 1-based, as a person counts them in the file: for line-based files (sst2, TSV, CSV,
  JSONL) the row is the line number where the example starts, so in a CSV/TSV file the header is
  row 1 and the first example row 2; in a JSON list (diasafety) the row is the element number.
  Problems with the file's syntax (bytes that are not UTF-8, malformed JSON) name the line.
- Ids are the file's id column where there is one (olid, convabuse, user files with an `id` column
  or `ColumnNames.id`); otherwise `<split>-<0-based example index in the file, 6 digits>`, with split
  `train`, `val` or `test` (e.g. `train-000123`). Both are independent of subsampling.
- A text pair may be empty (some DiaSafety contexts got no response); a text may not.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from gbair.core.data import annotations
from gbair.core.data.dataset import DataError, DataSplits, TextDataset
from gbair.named_sets.catalog import CATALOG
from gbair.named_sets.locations import COMPRESSED_SUFFIX, NamedSetMissing, set_files

# Share of the training file set aside as validation data where a set has no validation file.
CARVED_VALIDATION_FRACTION = 0.1


class ColumnNames(BaseModel):
    """Where a user file keeps each field. `id=None` uses an `id` column if the file has one, else
    row-number ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = "text"
    text_pair: str | None = None
    label: str = "label"
    id: str | None = None


@dataclass(frozen=True)
class _Row:
    number: int
    record: dict[str, Any]


@dataclass(frozen=True)
class _Example:
    id: str
    text: str
    text_pair: str | None
    label: str
    row: int
    record: dict[str, Any]


@dataclass(frozen=True)
class _Split:
    path: Path
    examples: list[_Example]


@dataclass(frozen=True)
class _Source:
    """A data set as read from its files, before labels are checked and splits are sampled.
    `labels` maps each label as written in the files to its name, in class-index order; None
    means the distinct training labels, sorted."""

    name: str
    format: str
    columns: ColumnNames
    train: _Split
    validation: _Split | None
    test: _Split | None
    labels: dict[str, str] | None


def load_splits(
    source: str,
    *,
    data_dir: str | Path | None = None,
    train_size: int | None = None,
    val_size: int | None = None,
    seed: int = 0,
    validation_path: str | Path | None = None,
    test_path: str | Path | None = None,
    columns: ColumnNames | None = None,
) -> DataSplits:
    """Load a named set (`NAMED_SETS`, looked up first under `data_dir`, see
    `gbair.named_sets.locations`) or a user `.csv`/`.jsonl` training file with optional validation
    and test files. A named set found nowhere raises a `DataError` that says how to fetch it.

    `train_size` / `val_size` draw a seeded random subsample (None = all); the test split is always
    complete. Where there is no validation file (olid, banking77, or a user file without
    `validation_path`), `val_size` examples (default: 10% of the file) are carved out of the
    training file first, and the training subsample is drawn from the rest. The validation draw does not depend on
    `train_size`. Bad input raises one `DataError` naming the file, row and problem.
    """
    if source in _NAMED_SETS:
        if validation_path is not None or test_path is not None or columns is not None:
            raise ValueError("validation_path, test_path and columns apply only to user files")
        try:
            files = set_files(CATALOG[source], data_dir)
        except NamedSetMissing as missing:
            raise DataError(source, None, str(missing)) from None
        loaded = _NAMED_SETS[source](files)
    else:
        loaded = _user_source(source, validation_path, test_path, columns or ColumnNames())
    return _assemble(loaded, train_size, val_size, seed)


# --- reading files -------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(path, None, "file not found")
    data = path.read_bytes()
    if path.suffix == COMPRESSED_SUFFIX:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise DataError(path, None, f"not a readable gzip file ({error})") from None
    if not data.strip():
        raise DataError(path, None, "empty file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            path, line, f"byte {error.start} is not valid UTF-8 ({error.reason})"
        ) from None


def _lines(path: Path) -> list[tuple[int, str]]:
    """Numbered non-blank lines. Splits on newlines only, unlike `str.splitlines`, which would also
    split texts at form feeds and Unicode line separators."""
    numbered = enumerate(_read_text(path).split("\n"), start=1)
    return [(number, line.removesuffix("\r")) for number, line in numbered if line.strip()]


def _read_delimited(
    path: Path,
    *,
    delimiter: str = ",",
    quoting: int = csv.QUOTE_MINIMAL,
    fieldnames: list[str] | None = None,
) -> list[_Row]:
    """Rows of a CSV/TSV file keyed by its header (or by `fieldnames` for a file without one)."""
    reader = csv.reader(
        io.StringIO(_read_text(path), newline=""), delimiter=delimiter, quoting=quoting
    )
    header = fieldnames
    rows = []
    next_line = 1
    try:
        for fields in reader:
            line, next_line = next_line, reader.line_num + 1
            if not fields:
                continue
            if header is None:
                header = fields
            elif len(fields) != len(header):
                raise DataError(
                    path, line, f"{len(fields)} fields, but the header has {len(header)}"
                )
            else:
                rows.append(_Row(line, dict(zip(header, fields))))
    except csv.Error as error:
        raise DataError(path, reader.line_num, f"malformed CSV: {error}") from None
    return rows


def _read_jsonl(path: Path) -> list[_Row]:
    rows = []
    for number, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, number, f"malformed JSON line: {error.msg}") from None
        if not isinstance(record, dict):
            raise DataError(path, number, f"expected a JSON object, found {type(record).__name__}")
        rows.append(_Row(number, record))
    return rows


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(path, error.lineno, f"malformed JSON: {error.msg}") from None


def _read_json_list(path: Path) -> list[_Row]:
    data = _read_json(path)
    if not isinstance(data, list):
        raise DataError(path, None, f"expected a JSON list of objects, found {type(data).__name__}")
    for number, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise DataError(path, number, f"expected a JSON object, found {type(record).__name__}")
    return [_Row(number, record) for number, record in enumerate(data, start=1)]


def _read_sst2(path: Path) -> list[_Row]:
    rows = []
    for number, line in _lines(path):
        label, _, sentence = line.partition(" ")
        rows.append(_Row(number, {"label": label, "sentence": sentence}))
    return rows


def _read_user_table(path: Path) -> list[_Row]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_delimited(path)
    if suffix == ".jsonl":
        return _read_jsonl(path)
    found = f"'{path.suffix}'" if path.suffix else "none"
    raise DataError(path, None, f"unsupported file extension {found}; expected .csv or .jsonl")


# --- records to examples -------------------------------------------------------------------------


def _cell(path: Path, row: _Row, column: str) -> str:
    if column not in row.record:
        present = ", ".join(map(str, row.record)) or "none"
        raise DataError(path, row.number, f"missing column '{column}' (columns present: {present})")
    value = row.record[column]
    return "" if value is None else str(value)


def _filled_cell(path: Path, row: _Row, column: str, what: str) -> str:
    value = _cell(path, row, column)
    if not value.strip():
        raise DataError(path, row.number, f"empty {what} in column '{column}'")
    return value


def _examples(path: Path, rows: list[_Row], split: str, columns: ColumnNames) -> list[_Example]:
    if not rows:
        raise DataError(path, None, "empty file: no examples")
    id_column = columns.id or ("id" if "id" in rows[0].record else None)
    first_row_of_id: dict[str, int] = {}
    examples = []
    for index, row in enumerate(rows):
        example_id = (
            _filled_cell(path, row, id_column, "id") if id_column else f"{split}-{index:06d}"
        )
        if example_id in first_row_of_id:
            first = first_row_of_id[example_id]
            raise DataError(path, row.number, f"duplicate id '{example_id}' (first at row {first})")
        first_row_of_id[example_id] = row.number
        examples.append(
            _Example(
                id=example_id,
                text=_filled_cell(path, row, columns.text, "text"),
                text_pair=_cell(path, row, columns.text_pair) if columns.text_pair else None,
                label=_filled_cell(path, row, columns.label, "label"),
                row=row.number,
                record=row.record,
            )
        )
    return examples


def _read_split(
    path: Path, rows: Callable[[Path], list[_Row]], split: str, columns: ColumnNames
) -> _Split:
    return _Split(path, _examples(path, rows(path), split, columns))


# --- sources -------------------------------------------------------------------------------------


def _diasafety(files: dict[str, Path]) -> _Source:
    columns = ColumnNames(text="context", text_pair="response", label="label")
    return _Source(
        name="diasafety",
        format="diasafety",
        columns=columns,
        train=_read_split(files["train"], _read_json_list, "train", columns),
        validation=_read_split(files["validation"], _read_json_list, "val", columns),
        test=_read_split(files["test"], _read_json_list, "test", columns),
        labels={"Safe": "Safe", "Unsafe": "Unsafe"},
    )


def _sst2(files: dict[str, Path]) -> _Source:
    columns = ColumnNames(text="sentence", label="label")
    return _Source(
        name="sst2",
        format="sst2",
        columns=columns,
        train=_read_split(files["train"], _read_sst2, "train", columns),
        validation=_read_split(files["validation"], _read_sst2, "val", columns),
        test=_read_split(files["test"], _read_sst2, "test", columns),
        labels={"0": "negative", "1": "positive"},
    )


def _read_olid_tsv(path: Path) -> list[_Row]:
    # OLID tweets contain unbalanced quote characters: read them verbatim.
    return _read_delimited(path, delimiter="\t", quoting=csv.QUOTE_NONE)


def _read_olid_test(tweets_path: Path, labels_path: Path) -> list[_Row]:
    """The level-A test tweets with their gold labels (kept in a separate file) joined by id, as
    records shaped like the training file's."""
    label_rows = _read_delimited(labels_path, fieldnames=["id", "subtask_a"])
    gold = {row.record["id"]: row.record["subtask_a"] for row in label_rows}
    rows = []
    for row in _read_olid_tsv(tweets_path):
        tweet_id = _cell(tweets_path, row, "id")
        if tweet_id not in gold:
            raise DataError(
                tweets_path, row.number, f"id '{tweet_id}' has no label in {labels_path}"
            )
        rows.append(_Row(row.number, {**row.record, "subtask_a": gold[tweet_id]}))
    return rows


def _olid(files: dict[str, Path]) -> _Source:
    columns = ColumnNames(text="tweet", label="subtask_a", id="id")
    tweets_path = files["test"]
    test_rows = _read_olid_test(tweets_path, files["test_labels"])
    return _Source(
        name="olid",
        format="olid",
        columns=columns,
        train=_read_split(files["train"], _read_olid_tsv, "train", columns),
        validation=None,
        test=_Split(tweets_path, _examples(tweets_path, test_rows, "test", columns)),
        labels={"NOT": "NOT", "OFF": "OFF"},
    )


def _read_convabuse(path: Path, label_of: Callable[[dict[str, Any]], str | None]) -> list[_Row]:
    """The rows `label_of` gives a label (kept in a `label` column added to each record); the others
    are dropped."""
    rows = []
    for row in _read_delimited(path):
        try:
            label = label_of(row.record)
        except ValueError as error:
            raise DataError(path, row.number, str(error)) from None
        if label is not None:
            rows.append(_Row(row.number, {**row.record, "label": label}))
    return rows


def _convabuse(files: dict[str, Path]) -> _Source:
    """The user's turn is classified (text) as a reply to the agent's turn before it (text pair).
    Training rows get their annotators' majority label (the 86 ties of 2,501 rows are dropped);
    validation and test keep only the unanimous rows, so that they can be trusted (640 of 831 and
    663 of 853). See `annotations` for how votes are counted."""
    columns = ColumnNames(text="user", text_pair="agent", label="label", id="example_id")

    def split(role: str, name: str, label_of: Callable[[dict[str, Any]], str | None]) -> _Split:
        path = files[role]
        return _Split(path, _examples(path, _read_convabuse(path, label_of), name, columns))

    return _Source(
        name="convabuse",
        format="csv",
        columns=columns,
        train=split("train", "train", annotations.majority_label),
        validation=split("validation", "val", annotations.unanimous_label),
        test=split("test", "test", annotations.unanimous_label),
        labels={label: label for label in annotations.LABELS},
    )


def _banking77_classes(path: Path) -> dict[str, str]:
    """The 77 intents in the order of `categories.json`, the set's own class order."""
    categories = _read_json(path)
    if not isinstance(categories, list) or not all(isinstance(name, str) for name in categories):
        raise DataError(path, None, "expected a JSON list of category names")
    return {name: name for name in categories}


def _banking77(files: dict[str, Path]) -> _Source:
    columns = ColumnNames(text="text", label="category")
    return _Source(
        name="banking77",
        format="csv",
        columns=columns,
        train=_read_split(files["train"], _read_delimited, "train", columns),
        validation=None,
        test=_read_split(files["test"], _read_delimited, "test", columns),
        labels=_banking77_classes(files["categories"]),
    )


_NAMED_SETS: dict[str, Callable[[dict[str, Path]], _Source]] = {
    "diasafety": _diasafety,
    "sst2": _sst2,
    "olid": _olid,
    "convabuse": _convabuse,
    "banking77": _banking77,
}
NAMED_SETS: tuple[str, ...] = tuple(_NAMED_SETS)


def _user_source(
    source: str,
    validation_path: str | Path | None,
    test_path: str | Path | None,
    columns: ColumnNames,
) -> _Source:
    train_path = Path(source)
    if not train_path.suffix and len(train_path.parts) == 1 and not train_path.exists():
        known = ", ".join(_NAMED_SETS)
        raise DataError(
            source, None, f"unknown data set; expected one of {known} or a .csv/.jsonl file"
        )

    def optional_split(path: str | Path | None, split: str) -> _Split | None:
        return None if path is None else _read_split(Path(path), _read_user_table, split, columns)

    return _Source(
        name=train_path.stem,
        format=train_path.suffix.lower().removeprefix("."),
        columns=columns,
        train=_read_split(train_path, _read_user_table, "train", columns),
        validation=optional_split(validation_path, "val"),
        test=optional_split(test_path, "test"),
        labels=None,
    )


# --- labels, sampling, assembly ------------------------------------------------------------------


def _training_labels(train: _Split) -> dict[str, str]:
    distinct = sorted({example.label for example in train.examples})
    if len(distinct) < 2:
        raise DataError(
            train.path,
            None,
            f"only one class ('{distinct[0]}') in the training data; need at least 2",
        )
    return {label: label for label in distinct}


def _dataset(
    split: _Split, labels: dict[str, str], label_origin: str, columns: ColumnNames
) -> TextDataset:
    class_of = {raw: index for index, raw in enumerate(labels)}
    for example in split.examples:
        if example.label not in class_of:
            known = ", ".join(labels)
            raise DataError(
                split.path,
                example.row,
                f"unknown label '{example.label}': {label_origin} has labels {known}",
            )
    examples = split.examples
    return TextDataset(
        ids=[example.id for example in examples],
        texts=[example.text for example in examples],
        labels=[class_of[example.label] for example in examples],
        label_names=list(labels.values()),
        text_pairs=[example.text_pair for example in examples] if columns.text_pair else None,
        records=[example.record for example in examples],
        label_column=columns.label,
    )


def _checked_size(size: int, available: int, name: str) -> int:
    if not 1 <= size <= available:
        raise ValueError(f"{name}={size} must be between 1 and the {available} examples available")
    return size


def _subsample(
    dataset: TextDataset, size: int | None, name: str, rng: np.random.Generator
) -> TextDataset:
    if size is None:
        return dataset
    chosen = rng.choice(len(dataset), size=_checked_size(size, len(dataset), name), replace=False)
    return dataset.subset(sorted(chosen.tolist()))


def _carve(
    dataset: TextDataset, size: int | None, rng: np.random.Generator
) -> tuple[TextDataset, TextDataset]:
    """(validation, rest): a random validation set taken out of a training file."""
    if size is None:
        size = max(1, round(CARVED_VALIDATION_FRACTION * len(dataset)))
    _checked_size(size, len(dataset) - 1, "val_size")
    order = rng.permutation(len(dataset)).tolist()
    return dataset.subset(sorted(order[:size])), dataset.subset(sorted(order[size:]))


def _require_every_class(train: TextDataset, path: Path, sampled: bool) -> None:
    present = set(train.labels)
    for index, name in enumerate(train.label_names):
        if index not in present:
            where = f" among the {len(train)} sampled training examples" if sampled else ""
            raise DataError(path, None, f"class '{name}' has no training example{where}")


def _assemble(
    source: _Source, train_size: int | None, val_size: int | None, seed: int
) -> DataSplits:
    labels = source.labels or _training_labels(source.train)
    label_origin = source.name if source.labels else "the training data"

    def dataset(split: _Split) -> TextDataset:
        return _dataset(split, labels, label_origin, source.columns)

    # One generator per draw, so that e.g. changing train_size leaves the validation set alone.
    carve_rng, train_rng, validation_rng = (
        np.random.default_rng([seed, stream]) for stream in range(3)
    )
    train_pool = dataset(source.train)
    if source.validation is None:
        validation, train_pool = _carve(train_pool, val_size, carve_rng)
    else:
        validation = _subsample(dataset(source.validation), val_size, "val_size", validation_rng)
    test = dataset(source.test) if source.test is not None else None
    train = _subsample(train_pool, train_size, "train_size", train_rng)
    _require_every_class(train, source.train.path, sampled=len(train) < len(train_pool))
    return DataSplits(
        name=source.name, train=train, validation=validation, test=test, format=source.format
    )
