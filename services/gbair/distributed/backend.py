"""RayBackend: core's RoundBackend with training on Ray Train and influence scoring on Ray Serve.

Workers and replicas build the classifier from the job's ModelConfig, so the classifier handed to the
backend must be the one Recovery builds from that config (it is unless a caller passes its own).
"""

from __future__ import annotations

from collections.abc import Sequence

from gbair.core.config import GbairConfig
from gbair.core.influence import InfluenceStatistics, QueryGradients
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier
from gbair.core.progress import Progress
from gbair.core.training import Checkpoint, TrainingResult
from gbair.distributed.checkpoints import store_checkpoints
from gbair.distributed.config import RayConfig
from gbair.distributed.trainer import train_on_ray
from gbair.serving import ShardedScoring, deploy


class RayBackend:
    def __init__(self, config: GbairConfig, ray_config: RayConfig):
        """Needs a connected Ray driver (gbair.distributed.connect); deploys the influence service if absent."""
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
        return self.scoring.statistics(
            self.config.model,
            classifier.label_names,
            references,
            train,
            queries,
            self.config.influence.batch_size,
            progress,
        )
