"""RayBackend: core's RoundBackend on a Ray cluster. Training runs on Ray Train, training-set scoring on the
influence service (Ray Serve), and every other model computation in the job's actor
(gbair.distributed.model_actors). This process only encodes, with the tokenizer, and moves references:
the query gradients go from the actor to the influence service's shards without coming through here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import ray
import torch
from ray import serve

from gbair.core.backend import TrainingRequest
from gbair.core.config import GbairConfig
from gbair.core.data.dataset import TextDataset
from gbair.core.influence import InfluenceStatistics
from gbair.core.model.inputs import EncodedSet, TextEncoder, encode
from gbair.core.model.pet import PetState
from gbair.core.progress import Progress, no_progress
from gbair.core.training import Checkpoint, TrainingResult
from gbair.distributed.cluster import connect
from gbair.distributed.config import RayConfig
from gbair.distributed.model_actors import job_model
from gbair.distributed.trainer import prepare_training, train_each_on_ray, train_on_ray
from gbair.serving.checkpoints import StoredCheckpoint, remove_runs, store_checkpoints
from gbair.serving.driver import ShardedScoring, deploy


class RayBackend:
    def __init__(self, config: GbairConfig, ray_config: RayConfig, label_names: Sequence[str]):
        """Needs a connected Ray driver (gbair.distributed.connect); deploys the influence service if absent."""
        self.config = config
        self.ray_config = ray_config
        self.label_names = list(label_names)
        self.encoder = TextEncoder.load(config.model)
        # The model actor and the training process build their backbones while Serve starts the influence
        # application.
        self.model = job_model(config, label_names, ray_config.model_actors)
        summary = self.model.summary.remote()
        training = prepare_training(config, ray_config, self.label_names)
        self.scoring = ShardedScoring(deploy(ray_config.serving), ray_config.serving)
        self.kind, self.num_trainable, self.initial_state = ray.get(summary)
        ray.get(training)

    def encode(self, dataset: TextDataset) -> EncodedSet:
        return encode(self.encoder, dataset)

    def train(self, start: PetState, train: EncodedSet, progress: Progress, seed: int | None = None) -> TrainingResult:
        progress("train", 0, 1)
        result = train_on_ray(self.config.with_training_seed(seed), self.ray_config, self.label_names, start, train)
        progress("train", 1, 1)
        return result

    def train_each(self, requests: Sequence[TrainingRequest], progress: Progress) -> list[TrainingResult]:
        progress("train", 0, len(requests))
        configs = [self.config.with_training_seed(request.seed) for request in requests]
        results = train_each_on_ray(configs, self.ray_config, self.label_names, [r.start for r in requests],
                                    [r.train for r in requests])
        progress("train", len(requests), len(requests))
        return results

    def seeded_state(self, seed: int) -> PetState:
        return ray.get(self.model.seeded_state.remote(seed))

    def discard(self, training: TrainingResult) -> None:
        remove_runs([c.reference for c in training.checkpoints if isinstance(c, StoredCheckpoint)])

    def probabilities(self, state: PetState, examples: EncodedSet, progress: Progress = no_progress) -> torch.Tensor:
        progress("evaluate", 0, len(examples))
        probabilities = ray.get(self.model.probabilities.remote(state, examples))
        progress("evaluate", len(examples), len(examples))
        return probabilities

    def query_gradients(self, checkpoints: Sequence[Checkpoint], examples: EncodedSet) -> ray.ObjectRef:
        """A reference: the gradients stay in the object store, where the scoring shards read them."""
        return self.model.query_gradients.remote(list(checkpoints), examples)

    def training_statistics(
        self, checkpoints: Sequence[Checkpoint], train: EncodedSet, queries: ray.ObjectRef, progress: Progress
    ) -> InfluenceStatistics:
        references = store_checkpoints(checkpoints, self.ray_config.storage_path)
        try:
            return self.scoring.statistics(
                self.config.model, self.label_names, references, train, queries, self.config.influence.batch_size, progress
            )
        finally:
            # Copies written only for this scoring (of a round loaded from its file after a resume).
            remove_runs([r for r, c in zip(references, checkpoints) if not isinstance(c, StoredCheckpoint)])

    def suggest_labels(self, checkpoints: Sequence[Checkpoint], examples: EncodedSet, queries: ray.ObjectRef) -> list[int]:
        return ray.get(self.model.suggest_labels.remote(list(checkpoints), examples, queries))

    def embeddings(self, examples: EncodedSet, progress: Progress = no_progress) -> np.ndarray:
        return ray.get(self.model.embeddings.remote(examples))

    def save_adapter(self, state: PetState, directory: Path) -> Path:
        for name, content in ray.get(self.model.adapter_files.remote(state)).items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(content)
        return directory


@contextmanager
def ray_backend(config: GbairConfig, ray_config: RayConfig, label_names: Sequence[str]) -> Iterator[RayBackend]:
    """A RayBackend on the configured cluster; a local cluster started here is shut down on the way out."""
    started = connect(ray_config)
    try:
        yield RayBackend(config, ray_config, label_names)
    finally:
        if started:
            serve.shutdown()
            ray.shutdown()
