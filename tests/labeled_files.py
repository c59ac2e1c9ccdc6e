"""Small labeled CSV files for the CLI and service tests."""

import csv
from pathlib import Path

POSITIVE = ["a joy to watch", "warm and funny", "a superb cast", "moving and smart", "great fun", "lovely score"]
NEGATIVE = ["a dull mess", "tedious and flat", "badly acted", "a boring script", "awful pacing", "weak and silly"]


def rows(prefix: str, count: int) -> list[dict]:
    return [
        {"id": f"{prefix}{i}", "text": (POSITIVE if i % 2 else NEGATIVE)[i % 6] + f" , take {i}",
         "label": "pos" if i % 2 else "neg"}
        for i in range(count)
    ]


def write_csv(path: Path, records: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows(records)
    return path


def write_dataset_files(folder: Path, train: int = 40, validation: int = 16, test: int = 8) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "train": write_csv(folder / "train.csv", rows("t", train)),
        "validation": write_csv(folder / "validation.csv", rows("v", validation)),
        "test": write_csv(folder / "test.csv", rows("x", test)),
    }
