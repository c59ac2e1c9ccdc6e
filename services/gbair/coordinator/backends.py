"""Which `RoundBackend` runs a job's heavy steps, chosen by the `backend` setting."""

from __future__ import annotations

from gbair.core.config import GbairConfig
from gbair.core.recovery import LocalBackend, RoundBackend
from gbair.coordinator.settings import CoordinatorSettings


def make_backend(settings: CoordinatorSettings, config: GbairConfig) -> RoundBackend:
    if settings.backend == "local":
        return LocalBackend(config)
    raise ValueError(f"unknown backend '{settings.backend}'")
