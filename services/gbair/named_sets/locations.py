"""Which folder holds a named set on this machine. Folders are searched in this order, and the first
one that holds all of a set's files (each as is or gzip-compressed, `NAME.gz`) wins: `--data-dir`,
env `GBAIR_DATA_DIR`, the per-user data folder (where `gbair data fetch` puts sets), and last the
sets shipped inside the package."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from gbair.named_sets.catalog import DataFile, NamedSet

BUNDLED_DIR = Path(__file__).parent / "bundled"
COMPRESSED_SUFFIX = ".gz"


class NamedSetMissing(LookupError):
    """No searched folder holds the set; the message says how to get it."""


def user_data_dir() -> Path:
    return platformdirs.user_data_path("gbair") / "datasets"


def search_path(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """(what the folder is, the folder), in lookup order."""
    folders = []
    if data_dir is not None:
        folders.append(("--data-dir", Path(data_dir)))
    if configured := os.environ.get("GBAIR_DATA_DIR"):
        folders.append(("GBAIR_DATA_DIR", Path(configured)))
    folders.append(("user data folder", user_data_dir()))
    folders.append(("bundled", BUNDLED_DIR))
    return folders


def stored_file(folder: Path, file: DataFile) -> Path | None:
    """The file in `folder` as is, or else compressed; None if neither is there."""
    for candidate in (folder / file.name, folder / f"{file.name}{COMPRESSED_SUFFIX}"):
        if candidate.is_file():
            return candidate
    return None


def holds(root: Path, named: NamedSet) -> bool:
    """Whether `root/<set name>` has every file of the set."""
    return all(stored_file(root / named.name, file) for file in named.files.values())


def locate(named: NamedSet, data_dir: str | Path | None = None) -> tuple[str, Path] | None:
    """(what the folder is, the set's folder) of the first searched folder holding the whole set."""
    for origin, root in search_path(data_dir):
        if holds(root, named):
            return origin, root / named.name
    return None


def set_files(named: NamedSet, data_dir: str | Path | None = None) -> dict[str, Path]:
    """Each of the set's files by role, from the first folder holding them all."""
    found = locate(named, data_dir)
    if found is None:
        searched = ", ".join(f"{origin} {root}" for origin, root in search_path(data_dir) if origin != "bundled")
        raise NamedSetMissing(
            f"not found in {searched}; run 'gbair data fetch {named.name}' "
            f"or pass --data-dir a folder that holds {named.name}/"
        )
    _, folder = found
    return {role: stored_file(folder, file) for role, file in named.files.items()}
