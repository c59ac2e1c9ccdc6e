"""Download named sets from their commit-pinned public sources, checking every file's sha256.

A set is downloaded into a hidden staging folder beside its destination and renamed into place only
once every file has arrived whole and matches its pin, so a failed or interrupted fetch leaves nothing
half-written: the staging folder, and any folder the fetch had to create, are removed."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from rich.progress import Progress

from gbair import __version__
from gbair.named_sets.catalog import GITHUB_RAW, DataFile, NamedSet

MIRROR_ENV = "GBAIR_DATA_MIRROR"
CHUNK_BYTES = 1 << 16
TIMEOUT_S = 30.0


class FetchError(Exception):
    """A fetch that failed, said in one line."""


def mirror(explicit: str | None = None) -> str:
    """The base URL files are fetched from: `explicit`, else env GBAIR_DATA_MIRROR, else GitHub's raw
    file server. A mirror serves each file at OWNER/REPO/COMMIT/PATH, as GitHub does."""
    return explicit or os.environ.get(MIRROR_ENV) or GITHUB_RAW


def fetch(named: NamedSet, root: Path, base_url: str, progress: Progress) -> Path:
    """Download `named` into `root/<name>`, replacing what is there; returns that folder."""
    with _created(root):
        staging = Path(tempfile.mkdtemp(prefix=f".{named.name}-", suffix=".partial", dir=root))
        try:
            for file in named.files.values():
                _download(named.url(file, base_url), staging / file.name, file, progress)
            return _move_into_place(staging, root / named.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _created(folder: Path) -> Iterator[None]:
    """Make `folder` (and its missing parents); if what follows fails, remove what was made here."""
    topmost_new = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if topmost_new is not None:
            shutil.rmtree(topmost_new, ignore_errors=True)
        raise


def _download(url: str, target: Path, file: DataFile, progress: Progress) -> None:
    task = progress.add_task(file.name, total=None)
    digest = hashlib.sha256()
    received = 0
    request = urllib.request.Request(url, headers={"User-Agent": f"gbair/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, target.open("wb") as out:
            expected = response.length
            progress.update(task, total=expected)
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress.advance(task, len(chunk))
    except urllib.error.HTTPError as error:
        raise FetchError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise FetchError(
            f"cannot download {url} ({reason}); without network access, copy the set's files into a "
            f"folder and pass it as --data-dir"
        ) from None
    # urllib ends a response whose connection dropped early as if it were complete.
    if expected is not None and received != expected:
        raise FetchError(f"cannot download {url}: the connection closed after {received} of {expected} bytes")
    if (actual := digest.hexdigest()) != file.sha256:
        target.unlink()
        raise FetchError(f"{url}: sha256 {actual} is not the pinned {file.sha256}; the download was deleted")


def _move_into_place(staging: Path, destination: Path) -> Path:
    """Rename `staging` to `destination`; an older copy there is set aside first and removed after."""
    retired = None
    if destination.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", suffix=".old", dir=destination.parent))
        os.replace(destination, retired / destination.name)
    os.replace(staging, destination)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
    return destination
