"""Settings for running G-BAIR on Ray: the cluster and the training workers, with the influence service's
(gbair.serving.config) inside."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gbair.serving.config import ServingConfig


def machine_cpus() -> int:
    """The CPUs a local cluster is sized from."""
    return os.cpu_count() or 1


LOCAL_MODEL_ACTORS = 64
"""Model actors a local cluster makes room for: one per running job and one per round in the explain cache."""


class ModelActorConfig(BaseModel):
    """The Ray actors that hold a classifier for everything outside training and training-set scoring: one
    per running job (evaluation, query gradients, relabel suggestions, probabilities, embeddings, the
    adapter) and one per explained round (ExplainExample)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpus: float = Field(
        0.0, ge=0,
        description="CPUs each actor reserves. 0: an actor works only between a round's training and its "
        "scoring, on CPUs those leave idle; reserve some to keep actors off a head node that runs no work.",
    )
    gpus: float = Field(0.0, ge=0, description="GPUs each actor reserves (a fraction shares one).")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources each actor asks for: on KubeRay {'gbair-model': 1} keeps actors on "
        "the worker group that announces it, off a head node with no room for a model.",
    )
    threads: int = Field(2, ge=1, description="torch threads inside each actor.")


class RayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(
        None,
        description="An existing cluster ('ray://host:10001', 'host:6379', or 'auto': RAY_ADDRESS, else the one "
        "`ray start` began on this machine); none starts a local one, whatever RAY_ADDRESS says.",
    )
    num_workers: int = Field(1, ge=1, description="Ray Train workers; each takes its share of every batch.")
    cpus_per_worker: float | None = Field(
        None, gt=0,
        description="CPUs each training worker reserves; its torch threads follow. None: 1 on an existing "
        "cluster; on a local one the machine's CPUs shared among the workers, because training and scoring "
        "take turns within a round.",
    )
    use_gpu: bool = False
    train_resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources each training worker asks for, beside its CPU (or GPU): on KubeRay "
        "{'gbair-train': 1} keeps training on the worker group that announces it.",
    )
    storage_path: str = Field(
        str(Path(tempfile.gettempdir()) / "gbair-checkpoints"),
        description="Where checkpoints go; every node must read it: a shared folder or a URI such as s3://bucket/path.",
    )
    include_dashboard: bool = Field(False, description="Start Ray's dashboard with a local cluster.")
    serving: ServingConfig = ServingConfig()
    model_actors: ModelActorConfig = ModelActorConfig()

    @property
    def worker_cpus(self) -> float:
        if self.cpus_per_worker is not None:
            return self.cpus_per_worker
        if self.address is not None:
            return 1.0
        return float(max(1, machine_cpus() // self.num_workers))

    @property
    def worker_threads(self) -> int:
        return max(1, int(self.worker_cpus))

    @property
    def logical_cpus(self) -> int:
        """CPUs a local cluster announces. Training and scoring take turns within a round, but the Serve
        replicas stay up between rounds; announcing room for both keeps training from waiting forever on
        CPUs that idle replicas hold."""
        needed = self.num_workers * self.worker_cpus + self.serving.max_replicas * self.serving.cpus_per_replica
        return max(machine_cpus(), math.ceil(needed))

    @property
    def local_custom_resources(self) -> dict[str, float]:
        """What a local cluster announces of `train_resources` and of the model actors' resources, so that
        training and the actors asking for them can start."""
        announced = {name: amount * self.num_workers for name, amount in self.train_resources.items()}
        for name, amount in self.model_actors.resources.items():
            announced[name] = announced.get(name, 0.0) + amount * LOCAL_MODEL_ACTORS
        return announced
