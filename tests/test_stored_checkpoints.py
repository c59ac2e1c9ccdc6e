"""Checkpoint copies in Ray storage are removed from the references they carry, and nothing else there:
only the run folders gbair named go. A round saved to its file keeps every checkpoint's state."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("pyarrow")

from gbair.core.recovery_state import TrainedRound  # noqa: E402
from gbair.core.training import Checkpoint, TrainingResult  # noqa: E402
from gbair.serving.checkpoints import read_checkpoint, remove_runs, store_checkpoints, write_checkpoint  # noqa: E402


def _checkpoint(step: int) -> Checkpoint:
    return Checkpoint(step=step, epoch=float(step), learning_rate=0.1, state={"prompt": torch.full((2, 3), float(step))})


def _round(checkpoints) -> TrainedRound:
    training = TrainingResult(initial_state={"prompt": torch.zeros(2, 3)}, checkpoints=checkpoints, epochs=2, seconds=1.0)
    return TrainedRound(round=0, training=training, val_accuracy=0.5, test_accuracy=None, errors=[])


def test_a_saved_round_loses_its_ray_train_run_folder_and_keeps_its_file(tmp_path):
    storage = tmp_path / "storage"
    run = storage / "gbair-train-0123456789ab"
    stored = [read_checkpoint(str(write_checkpoint(_checkpoint(k), run / f"checkpoint_00000{k}"))) for k in (1, 2)]
    other_run = write_checkpoint(_checkpoint(3), storage / "gbair-train-ba9876543210" / "checkpoint_000001")
    _round(stored).save_to(tmp_path / "round-0.pt")

    remove_runs([c.reference for c in stored])
    assert not run.exists()
    assert other_run.is_dir()  # another round's, or another job's
    loaded = TrainedRound.load(tmp_path / "round-0.pt")
    assert [torch.equal(a.state["prompt"], b.state["prompt"]) for a, b in zip(loaded.training.checkpoints, stored)] == [True, True]
    remove_runs([c.reference for c in stored])  # a second time: nothing left to remove, no error


def test_scoring_copies_go_and_a_reference_outside_gbair_runs_stays(tmp_path):
    storage = tmp_path / "storage"
    references = store_checkpoints([_checkpoint(1), _checkpoint(2)], str(storage))
    (scoring_run,) = list(storage.iterdir())
    assert scoring_run.name.startswith("scoring-")
    foreign = write_checkpoint(_checkpoint(4), storage / "someone-else" / "checkpoint_000001")
    remove_runs([*references, str(foreign)])
    assert not scoring_run.exists() and foreign.is_dir()
