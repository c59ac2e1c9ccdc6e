"""Where a job's model computations run, chosen by the `backend` setting: the `RoundBackend` of each job
and the explainer of each explained round."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from gbair.core.backend import LocalBackend, RoundBackend
from gbair.core.config import GbairConfig
from gbair.core.round_explainer import ExplainerFactory, RoundExplainer
from gbair.coordinator.settings import CoordinatorSettings


class Backends:
    """Makes each job's backend. With `backend: ray` the coordinator joins (or starts) the Ray cluster once,
    at start-up on the main thread, because ray.init installs signal handlers and must not race between
    job threads; a cluster started here is shut down by `close`. This process then holds no model: jobs
    and explanations build theirs in Ray actors."""

    def __init__(self, settings: CoordinatorSettings):
        self.settings = settings
        self.started_cluster = False
        if settings.backend == "ray":
            from gbair.distributed.cluster import connect  # Ray is imported only when rounds run on it

            self.started_cluster = connect(settings.ray)

    def for_job(self, config: GbairConfig, label_names: Sequence[str]) -> RoundBackend:
        if self.settings.backend == "ray":
            from gbair.distributed.backend import RayBackend

            return RayBackend(config, self.settings.ray, label_names)
        return LocalBackend(config, label_names)

    @property
    def explainer(self) -> ExplainerFactory:
        """How an explained round's explainer is built: here, or in a Ray actor."""
        if self.settings.backend == "ray":
            from gbair.distributed.model_actors import RemoteExplainer

            return functools.partial(RemoteExplainer, self.settings.ray.model_actors)
        return RoundExplainer

    def close(self) -> None:
        if self.started_cluster:
            import ray
            from ray import serve

            serve.shutdown()
            ray.shutdown()
