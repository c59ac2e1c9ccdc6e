"""PET checkpoints in shared storage: what a Serve replica loads and a Ray Train worker (gbair.distributed)
reports.

A checkpoint is a folder with the PET state (safetensors) and its step, epoch and learning rate (JSON);
the last one of a Ray Train run also holds the logits recorded while training (safetensors). It is
referred to by a plain string, a local path or a URI such as s3://bucket/run/checkpoint_000001, so
any node can open it through pyarrow's file systems, as Ray Train does.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from gbair.core.training import Checkpoint

STATE_FILE = "pet_state.safetensors"
META_FILE = "checkpoint.json"
TRAINING_LOGITS_FILE = "training_logits.safetensors"
# The folders gbair makes in storage, one per training (Ray Train's run) or per scoring of checkpoints
# that were not there yet.
TRAINING_RUN_PREFIX = "gbair-train-"
SCORING_RUN_PREFIX = "scoring-"


@dataclass(frozen=True)
class StoredCheckpoint(Checkpoint):
    reference: str
    """Where the checkpoint lies in shared storage."""


def write_checkpoint(checkpoint: Checkpoint, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in checkpoint.state.items()}
    (directory / STATE_FILE).write_bytes(save_tensors(state))
    meta = {"step": checkpoint.step, "epoch": checkpoint.epoch, "learning_rate": checkpoint.learning_rate}
    (directory / META_FILE).write_text(json.dumps(meta))
    return directory


def write_training_logits(logits: torch.Tensor, directory: Path) -> None:
    (directory / TRAINING_LOGITS_FILE).write_bytes(save_tensors({"logits": logits.contiguous()}))


def read_training_logits(reference: str) -> torch.Tensor:
    """The record `write_training_logits` left in the checkpoint at `reference`."""
    filesystem, path = _filesystem(reference)
    with filesystem.open_input_file(f"{path}/{TRAINING_LOGITS_FILE}") as handle:
        return load_tensors(handle.read())["logits"]


def read_checkpoint(reference: str) -> StoredCheckpoint:
    filesystem, path = _filesystem(reference)
    try:
        with filesystem.open_input_file(f"{path}/{META_FILE}") as handle:
            meta = json.loads(handle.read())
        with filesystem.open_input_file(f"{path}/{STATE_FILE}") as handle:
            state = load_tensors(handle.read())
    except (FileNotFoundError, OSError) as error:
        raise FileNotFoundError(f"no gbair checkpoint at {reference!r}: {error}") from error
    return StoredCheckpoint(meta["step"], meta["epoch"], meta["learning_rate"], state, reference)


def store_checkpoints(
    checkpoints: Sequence[Checkpoint], storage_path: str, run_prefix: str = SCORING_RUN_PREFIX
) -> list[str]:
    """References for `checkpoints`, writing to storage (in a new run folder) the ones that are not there yet."""
    references = []
    run = f"{storage_path.rstrip('/')}/{run_prefix}{uuid.uuid4().hex[:12]}"
    for index, checkpoint in enumerate(checkpoints):
        if isinstance(checkpoint, StoredCheckpoint):
            references.append(checkpoint.reference)
            continue
        reference = f"{run}/checkpoint_{index:06d}"
        with tempfile.TemporaryDirectory() as local:
            write_checkpoint(checkpoint, Path(local))
            filesystem, path = _filesystem(reference)
            filesystem.create_dir(path, recursive=True)
            pyarrow.fs.copy_files(local, path, destination_filesystem=filesystem)
        references.append(reference)
    return references


def remove_runs(references: Sequence[str]) -> None:
    """Delete the run folders holding these checkpoints, each the nearest folder above a reference that
    gbair named; a reference in no such folder is left alone."""
    for run in {_run_of(reference) for reference in references} - {None}:
        filesystem, path = _filesystem(run)
        try:
            filesystem.delete_dir(path)
        except FileNotFoundError:  # removed already
            pass


def _run_of(reference: str) -> str | None:
    parts = reference.rstrip("/").split("/")
    for end in range(len(parts) - 1, 0, -1):
        if parts[end - 1].startswith((TRAINING_RUN_PREFIX, SCORING_RUN_PREFIX)):
            return "/".join(parts[:end])
    return None


def _filesystem(reference: str) -> tuple[pyarrow.fs.FileSystem, str]:
    if "://" in reference:
        return pyarrow.fs.FileSystem.from_uri(reference)
    return pyarrow.fs.LocalFileSystem(), str(Path(reference).expanduser().resolve())
