"""Load a named set or user .csv/.jsonl files into `DataSplits`: read the source, check its labels, carve
a validation set where there is none, and draw the seeded subsamples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gbair.core.data.dataset import DataError, DataSplits, TextDataset
from gbair.core.data.files import read_user_table
from gbair.core.data.named_readers import NAMED_SET_READERS
from gbair.core.data.sources import ColumnNames, Source, Split, read_split
from gbair.named_sets.catalog import CATALOG
from gbair.named_sets.locations import NamedSetMissing, set_files

# Share of the training file set aside as validation data where a set has no validation file.
CARVED_VALIDATION_FRACTION = 0.1


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
    if source in NAMED_SET_READERS:
        if validation_path is not None or test_path is not None or columns is not None:
            raise ValueError("validation_path, test_path and columns apply only to user files")
        try:
            files = set_files(CATALOG[source], data_dir)
        except NamedSetMissing as missing:
            raise DataError(source, None, str(missing)) from None
        loaded = NAMED_SET_READERS[source](files)
    else:
        loaded = _user_source(source, validation_path, test_path, columns or ColumnNames())
    return _assemble(loaded, train_size, val_size, seed)


def _user_source(
    source: str,
    validation_path: str | Path | None,
    test_path: str | Path | None,
    columns: ColumnNames,
) -> Source:
    train_path = Path(source)
    if not train_path.suffix and len(train_path.parts) == 1 and not train_path.exists():
        known = ", ".join(NAMED_SET_READERS)
        raise DataError(
            source, None, f"unknown data set; expected one of {known} or a .csv/.jsonl file"
        )

    def optional_split(path: str | Path | None, split: str) -> Split | None:
        return None if path is None else read_split(Path(path), read_user_table, split, columns)

    return Source(
        name=train_path.stem,
        format=train_path.suffix.lower().removeprefix("."),
        columns=columns,
        train=read_split(train_path, read_user_table, "train", columns),
        validation=optional_split(validation_path, "val"),
        test=optional_split(test_path, "test"),
        labels=None,
    )


def _training_labels(train: Split) -> dict[str, str]:
    distinct = sorted({example.label for example in train.examples})
    if len(distinct) < 2:
        raise DataError(
            train.path,
            None,
            f"only one class ('{distinct[0]}') in the training data; need at least 2",
        )
    return {label: label for label in distinct}


def _dataset(
    split: Split, labels: dict[str, str], label_origin: str, columns: ColumnNames
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
    source: Source, train_size: int | None, val_size: int | None, seed: int
) -> DataSplits:
    labels = source.labels or _training_labels(source.train)
    label_origin = source.name if source.labels else "the training data"

    def dataset(split: Split) -> TextDataset:
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
