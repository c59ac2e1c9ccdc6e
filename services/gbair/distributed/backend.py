"""RayBackend: core's RoundBackend with training on Ray Train and influence scoring on Ray Serve.

Workers and replicas build the classifier from the job's ModelConfig, so the classifier handed to the
backend must be the one Recovery builds from that config (it is unless a caller passes its own).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import ray
from ray import serve

from gbair.core.config import GbairConfig
from gbair.core.influence import InfluenceStatistics, QueryGradients
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier
from gbair.core.progress import Progress
from gbair.core.training import Checkpoint, TrainingResult
from gbair.core.training_dynamics import NEEDS_TRAINING_LOGITS
from gbair.distributed.cluster import connect
from gbair.distributed.config import RayConfig
from gbair.distributed.trainer import train_on_ray
from gbair.serving.checkpoints import StoredCheckpoint, remove_runs, store_checkpoints
from gbair.serving.driver import ShardedScoring, deploy


class RayBackend:
    def __init__(self, config: GbairConfig, ray_config: RayConfig):
        """Needs a connected Ray driver (gbair.distributed.connect); deploys the influence service if absent."""
        if config.influence.method in NEEDS_TRAINING_LOGITS:
            # Ray Train's workers each see only their rows of a batch and report checkpoints alone.
            raise ValueError(
                f"method {config.influence.method!r} reads the logits recorded while training in one process, "
                "which Ray Train does not return: run it with the local backend"
            )
        self.config = config
        self.ray_config = ray_config
        self.scoring = ShardedScoring(deploy(ray_config.serving), ray_config.serving)

    def train(self, classifier: PetClassifier, train: EncodedSet, progress: Progress) -> TrainingResult:
        progress("train", 0, 1)
        result = train_on_ray(self.config, self.ray_config, classifier.label_names, classifier.pet_state(), train)
        # Recovery evaluates the classifier it passed in right after training.
        classifier.load_pet_state(result.final_state)
        progress("train", 1, 1)
        return result

    def training_statistics(
        self,
        classifier: PetClassifier,
        checkpoints: Sequence[Checkpoint],
        train: EncodedSet,
        queries: QueryGradients,
        progress: Progress,
    ) -> InfluenceStatistics:
        references = store_checkpoints(checkpoints, self.ray_config.storage_path)
        try:
            return self.scoring.statistics(
                self.config.model,
                classifier.label_names,
                references,
                train,
                queries,
                self.config.influence.batch_size,
                progress,
            )
        finally:
            # Copies written only for this scoring (of a round loaded from its file after a resume).
            remove_runs([r for r, c in zip(references, checkpoints) if not isinstance(c, StoredCheckpoint)])


@contextmanager
def ray_backend(config: GbairConfig, ray_config: RayConfig) -> Iterator[RayBackend]:
    """A RayBackend on the configured cluster; a local cluster started here is shut down on the way out."""
    started = connect(ray_config)
    try:
        yield RayBackend(config, ray_config)
    finally:
        if started:
            serve.shutdown()
            ray.shutdown()
