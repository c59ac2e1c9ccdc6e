"""Write a dataset back in the format it was loaded from (`DataSplits.format`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gbair.core.data.dataset import TextDataset

# A directory gets the name of the format's training file, so it can stand in for the named set.
_FILE_NAMES = {
    "sst2": "stsa.binary.train",
    "diasafety": "train.json",
    "olid": "olid-training-v1.0.tsv",
    "csv": "train.csv",
    "jsonl": "train.jsonl",
}


def write_dataset(dataset: TextDataset, format: str, path: Path) -> Path:
    """Write `dataset` (e.g. a cleaned training set) in `format`: its raw records with the label
    field set to each example's current label. `path` is the file, or an existing directory to
    write the format's training file name into. Returns the written file."""
    if format not in _WRITERS:
        raise ValueError(f"unknown format '{format}'; expected one of {', '.join(_WRITERS)}")
    if not dataset.records:
        raise ValueError("the dataset has no raw records to write")
    path = Path(path)
    target = path / _FILE_NAMES[format] if path.is_dir() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    _WRITERS[format](dataset, target)
    return target


def _relabeled_records(dataset: TextDataset) -> list[dict[str, Any]]:
    return [
        {**record, dataset.label_column: dataset.label_names[label]}
        for record, label in zip(dataset.records, dataset.labels)
    ]


def _write_sst2(dataset: TextDataset, path: Path) -> None:
    # SST-2 files store the class index (0 negative, 1 positive), not the label name.
    lines = [f"{label} {text}\n" for label, text in zip(dataset.labels, dataset.texts)]
    path.write_text("".join(lines), encoding="utf-8")


def _write_json_list(dataset: TextDataset, path: Path) -> None:
    text = json.dumps(_relabeled_records(dataset), ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")


def _write_jsonl(dataset: TextDataset, path: Path) -> None:
    lines = [
        json.dumps(record, ensure_ascii=False) + "\n" for record in _relabeled_records(dataset)
    ]
    path.write_text("".join(lines), encoding="utf-8")


def _write_delimited(records: list[dict[str, Any]], path: Path, **dialect: Any) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(records[0]), **dialect)
        writer.writeheader()
        writer.writerows(records)


def _write_csv(dataset: TextDataset, path: Path) -> None:
    _write_delimited(_relabeled_records(dataset), path)


def _write_olid(dataset: TextDataset, path: Path) -> None:
    # OLID tweets keep their quote characters verbatim, as the loader reads them.
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE, "quotechar": None}
    _write_delimited(_relabeled_records(dataset), path, **dialect)


_WRITERS: dict[str, Callable[[TextDataset, Path], None]] = {
    "sst2": _write_sst2,
    "diasafety": _write_json_list,
    "olid": _write_olid,
    "csv": _write_csv,
    "jsonl": _write_jsonl,
}
