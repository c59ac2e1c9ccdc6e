"""Small labeled CSV files for the service tests."""

import csv
from pathlib import Path

POSITIVE = ["a joy to watch", "warm and funny", "a superb cast", "moving and smart", "great fun", "lovely score"]
NEGATIVE = ["a dull mess", "tedious and flat", "badly acted", "a boring script", "awful pacing", "weak and silly"]


def write_rows(path: Path, prefix: str, count: int) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text", "label"])
        writer.writeheader()
        for i in range(count):
            writer.writerow({"id": f"{prefix}{i}", "text": (POSITIVE if i % 2 else NEGATIVE)[i % 6] + f" , take {i}",
                             "label": "pos" if i % 2 else "neg"})
    return path


def write_dataset_files(folder: Path, train: int = 40, validation: int = 16, test: int = 8) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "train": write_rows(folder / "train.csv", "t", train),
        "validation": write_rows(folder / "validation.csv", "v", validation),
        "test": write_rows(folder / "test.csv", "x", test),
    }
