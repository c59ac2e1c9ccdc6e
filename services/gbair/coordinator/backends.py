"""Which `RoundBackend` runs a job's heavy steps, chosen by the `backend` setting."""

from __future__ import annotations

from gbair.core.config import GbairConfig
from gbair.core.recovery import LocalBackend, RoundBackend
from gbair.coordinator.settings import CoordinatorSettings


class Backends:
    """Makes each job's backend. With `backend: ray` the coordinator joins (or starts) the Ray cluster once,
    at start-up on the main thread, because ray.init installs signal handlers and must not race between
    job threads; a cluster started here is shut down by `close`."""

    def __init__(self, settings: CoordinatorSettings):
        self.settings = settings
        self.started_cluster = False
        if settings.backend == "ray":
            from gbair.distributed.cluster import connect  # Ray is imported only when rounds run on it

            self.started_cluster = connect(settings.ray)

    def for_job(self, config: GbairConfig) -> RoundBackend:
        if self.settings.backend == "ray":
            from gbair.distributed.backend import RayBackend

            return RayBackend(config, self.settings.ray)
        return LocalBackend(config)

    def close(self) -> None:
        if self.started_cluster:
            import ray
            from ray import serve

            serve.shutdown()
            ray.shutdown()
