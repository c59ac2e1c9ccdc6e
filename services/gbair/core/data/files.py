"""Rows of a data file (CSV, TSV, JSONL, a JSON list, each possibly gzip-compressed as `NAME.gz`), with
errors that name the file and the row.

Rows are 1-based, as a person counts them in the file: for line-based files (sst2, TSV, CSV, JSONL) the row
is the line number where the example starts, so in a CSV/TSV file the header is row 1 and the first example
row 2; in a JSON list (diasafety) the row is the element number. Problems with the file's syntax (bytes that
are not UTF-8, malformed JSON) name the line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbair.core.data.dataset import DataError
from gbair.named_sets.locations import COMPRESSED_SUFFIX


@dataclass(frozen=True)
class Row:
    number: int
    record: dict[str, Any]


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


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Numbered non-blank lines. Splits on newlines only, unlike `str.splitlines`, which would also
    split texts at form feeds and Unicode line separators."""
    numbered = enumerate(_read_text(path).split("\n"), start=1)
    return [(number, line.removesuffix("\r")) for number, line in numbered if line.strip()]


def read_delimited(
    path: Path,
    *,
    delimiter: str = ",",
    quoting: int = csv.QUOTE_MINIMAL,
    fieldnames: list[str] | None = None,
) -> list[Row]:
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
                rows.append(Row(line, dict(zip(header, fields))))
    except csv.Error as error:
        raise DataError(path, reader.line_num, f"malformed CSV: {error}") from None
    return rows


def read_jsonl(path: Path) -> list[Row]:
    rows = []
    for number, line in numbered_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, number, f"malformed JSON line: {error.msg}") from None
        if not isinstance(record, dict):
            raise DataError(path, number, f"expected a JSON object, found {type(record).__name__}")
        rows.append(Row(number, record))
    return rows


def read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(path, error.lineno, f"malformed JSON: {error.msg}") from None


def read_json_list(path: Path) -> list[Row]:
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, None, f"expected a JSON list of objects, found {type(data).__name__}")
    for number, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise DataError(path, number, f"expected a JSON object, found {type(record).__name__}")
    return [Row(number, record) for number, record in enumerate(data, start=1)]


def read_user_table(path: Path) -> list[Row]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_delimited(path)
    if suffix == ".jsonl":
        return read_jsonl(path)
    found = f"'{path.suffix}'" if path.suffix else "none"
    raise DataError(path, None, f"unsupported file extension {found}; expected .csv or .jsonl")


def cell(path: Path, row: Row, column: str) -> str:
    if column not in row.record:
        present = ", ".join(map(str, row.record)) or "none"
        raise DataError(path, row.number, f"missing column '{column}' (columns present: {present})")
    value = row.record[column]
    return "" if value is None else str(value)


def filled_cell(path: Path, row: Row, column: str, what: str) -> str:
    value = cell(path, row, column)
    if not value.strip():
        raise DataError(path, row.number, f"empty {what} in column '{column}'")
    return value
