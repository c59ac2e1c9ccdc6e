"""A recorded round's checkpoints outside the job folder. The round's file in the job folder
(round-R.pt) holds every checkpoint's state, which is all that ExplainExample, the adapter and a resume
read; once the round is recorded in Redis, the copies Ray Train wrote to `ray.storage_path` only take
disk, so they go."""

from __future__ import annotations

from gbair.core.recovery_state import TrainedRound


def remove_copies_in_storage(trained: TrainedRound) -> None:
    references = [c.reference for c in trained.training.checkpoints if hasattr(c, "reference")]
    if not references:  # trained in this process, or loaded from the round's file
        return
    # Only a round trained on Ray has references, and only the ray extra brings pyarrow.
    from gbair.serving.checkpoints import remove_runs

    remove_runs(references)
