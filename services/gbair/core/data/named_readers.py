"""Each named set's files (found by `gbair.named_sets`) read as a `Source`: which columns hold the text, the
label and the id, how its labels are written, and what each set needs beyond a plain table (OLID's separate
test labels, ConvAbuse's annotator votes, BANKING77's class order)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gbair.core.data import annotations
from gbair.core.data.dataset import DataError
from gbair.core.data.files import Row, cell, numbered_lines, read_delimited, read_json, read_json_list
from gbair.core.data.sources import ColumnNames, Source, Split, read_split, split_examples


def _read_sst2(path: Path) -> list[Row]:
    rows = []
    for number, line in numbered_lines(path):
        label, _, sentence = line.partition(" ")
        rows.append(Row(number, {"label": label, "sentence": sentence}))
    return rows


def _file_per_split(
    name: str, files: dict[str, Path], rows: Callable[[Path], list[Row]], columns: ColumnNames, labels: dict[str, str]
) -> Source:
    """A set with a train, a validation and a test file, each read by `rows`."""
    return Source(
        name=name,
        format=name,
        columns=columns,
        train=read_split(files["train"], rows, "train", columns),
        validation=read_split(files["validation"], rows, "val", columns),
        test=read_split(files["test"], rows, "test", columns),
        labels=labels,
    )


def _diasafety(files: dict[str, Path]) -> Source:
    columns = ColumnNames(text="context", text_pair="response", label="label")
    return _file_per_split("diasafety", files, read_json_list, columns, {"Safe": "Safe", "Unsafe": "Unsafe"})


def _sst2(files: dict[str, Path]) -> Source:
    columns = ColumnNames(text="sentence", label="label")
    return _file_per_split("sst2", files, _read_sst2, columns, {"0": "negative", "1": "positive"})


def _read_olid_tsv(path: Path) -> list[Row]:
    # OLID tweets contain unbalanced quote characters: read them verbatim.
    return read_delimited(path, delimiter="\t", quoting=csv.QUOTE_NONE)


def _read_olid_test(tweets_path: Path, labels_path: Path) -> list[Row]:
    """The level-A test tweets with their gold labels (kept in a separate file) joined by id, as
    records shaped like the training file's."""
    label_rows = read_delimited(labels_path, fieldnames=["id", "subtask_a"])
    gold = {row.record["id"]: row.record["subtask_a"] for row in label_rows}
    rows = []
    for row in _read_olid_tsv(tweets_path):
        tweet_id = cell(tweets_path, row, "id")
        if tweet_id not in gold:
            raise DataError(
                tweets_path, row.number, f"id '{tweet_id}' has no label in {labels_path}"
            )
        rows.append(Row(row.number, {**row.record, "subtask_a": gold[tweet_id]}))
    return rows


def _olid(files: dict[str, Path]) -> Source:
    columns = ColumnNames(text="tweet", label="subtask_a", id="id")
    tweets_path = files["test"]
    test_rows = _read_olid_test(tweets_path, files["test_labels"])
    return Source(
        name="olid",
        format="olid",
        columns=columns,
        train=read_split(files["train"], _read_olid_tsv, "train", columns),
        validation=None,
        test=Split(tweets_path, split_examples(tweets_path, test_rows, "test", columns)),
        labels={"NOT": "NOT", "OFF": "OFF"},
    )


def _read_convabuse(path: Path, label_of: Callable[[dict[str, Any]], str | None]) -> list[Row]:
    """The rows `label_of` gives a label (kept in a `label` column added to each record); the others
    are dropped."""
    rows = []
    for row in read_delimited(path):
        try:
            label = label_of(row.record)
        except ValueError as error:
            raise DataError(path, row.number, str(error)) from None
        if label is not None:
            rows.append(Row(row.number, {**row.record, "label": label}))
    return rows


def _convabuse(files: dict[str, Path]) -> Source:
    """The user's turn is classified (text) as a reply to the agent's turn before it (text pair).
    Training rows get their annotators' majority label (the 86 ties of 2,501 rows are dropped);
    validation and test keep only the unanimous rows, so that they can be trusted (640 of 831 and
    663 of 853). See `annotations` for how votes are counted."""
    columns = ColumnNames(text="user", text_pair="agent", label="label", id="example_id")

    def split(role: str, name: str, label_of: Callable[[dict[str, Any]], str | None]) -> Split:
        path = files[role]
        return Split(path, split_examples(path, _read_convabuse(path, label_of), name, columns))

    return Source(
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
    categories = read_json(path)
    if not isinstance(categories, list) or not all(isinstance(name, str) for name in categories):
        raise DataError(path, None, "expected a JSON list of category names")
    return {name: name for name in categories}


def _banking77(files: dict[str, Path]) -> Source:
    columns = ColumnNames(text="text", label="category")
    return Source(
        name="banking77",
        format="csv",
        columns=columns,
        train=read_split(files["train"], read_delimited, "train", columns),
        validation=None,
        test=read_split(files["test"], read_delimited, "test", columns),
        labels=_banking77_classes(files["categories"]),
    )


NAMED_SET_READERS: dict[str, Callable[[dict[str, Path]], Source]] = {
    "diasafety": _diasafety,
    "sst2": _sst2,
    "olid": _olid,
    "convabuse": _convabuse,
    "banking77": _banking77,
}
NAMED_SETS: tuple[str, ...] = tuple(NAMED_SET_READERS)
