"""The classifiers of a job on Ray, as actors: the coordinator keeps ids, configs and references, and every
forward or backward pass outside Ray Train and the influence service runs in one of these. A job's actor
lives as long as its `RayBackend`, an explained round's as long as its place in the coordinator's cache:
Ray ends an actor once no handle to it is left."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
import torch

from gbair.core.backend import LocalBackend
from gbair.core.config import GbairConfig
from gbair.core.data.dataset import TextDataset
from gbair.core.influence import Explanation
from gbair.core.model.pet import PetState
from gbair.core.round_explainer import RankedSet, RoundExplainer
from gbair.core.training import Checkpoint
from gbair.distributed.config import ModelActorConfig


class _JobModel(LocalBackend):
    def __init__(self, config: GbairConfig, label_names: Sequence[str], threads: int):
        torch.set_num_threads(threads)
        super().__init__(config, label_names)

    def summary(self) -> tuple[str, int, PetState]:
        return self.kind, self.num_trainable, self.initial_state

    def adapter_files(self, state: PetState) -> dict[str, bytes]:
        """The saved adapter's files by relative path, for a coordinator that may share no disk with this node."""
        with tempfile.TemporaryDirectory() as folder:
            saved = self.save_adapter(state, Path(folder) / "adapter")
            return {str(path.relative_to(saved)): path.read_bytes() for path in saved.rglob("*") if path.is_file()}


class _ExplainerActor(RoundExplainer):
    def __init__(self, threads: int, *args):
        torch.set_num_threads(threads)
        super().__init__(*args)


def _options(config: ModelActorConfig) -> dict[str, Any]:
    return {"num_cpus": config.cpus, "num_gpus": config.gpus, "resources": dict(config.resources)}


def job_model(config: GbairConfig, label_names: Sequence[str], actors: ModelActorConfig) -> ray.actor.ActorHandle:
    """An actor with core's LocalBackend methods (called with `.remote`), plus `summary` and `adapter_files`."""
    return ray.remote(_JobModel).options(**_options(actors)).remote(config, list(label_names), actors.threads)


class RemoteExplainer:
    """A RoundExplainer in an actor, behind the same methods."""

    def __init__(
        self,
        actors: ModelActorConfig,
        config: GbairConfig,
        label_names: Sequence[str],
        checkpoints: Sequence[Checkpoint],
        train_set: TextDataset,
        validation: TextDataset,
    ):
        self._actor = ray.remote(_ExplainerActor).options(**_options(actors)).remote(
            actors.threads, config, list(label_names), list(checkpoints), train_set, validation
        )

    def predicted_labels(self) -> dict[str, str]:
        return ray.get(self._actor.predicted_labels.remote())

    def explain(self, example: TextDataset, top: int, against: RankedSet = "train") -> Explanation:
        return ray.get(self._actor.explain.remote(example, top, against))
