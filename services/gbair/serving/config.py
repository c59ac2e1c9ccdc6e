"""Settings of the Ray Serve influence service and of the driver that feeds it. Reading them imports
neither Ray nor torch, so that the coordinator's settings load without the ray extra."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServingConfig(BaseModel):
    """The Ray Serve influence deployment and how the driver feeds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_name: str = "gbair-influence"
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: float = Field(
        1.0, gt=0, description="Autoscaling target per replica; a replica scores one shard at a time."
    )
    upscale_delay_s: float = Field(
        2.0, ge=0,
        description="How long queued shards wait before the autoscaler adds replicas. A round sends every shard "
        "at once, so Serve's default of 30 s would leave most of a round's scoring to the first replica.",
    )
    cpus_per_replica: float = Field(1.0, gt=0)
    gpus_per_replica: float = Field(0.0, ge=0)
    threads_per_replica: int = Field(1, ge=1, description="torch threads inside each replica.")
    shard_size: int = Field(
        256, ge=1, description="Training examples per request, rounded down to whole influence batches (at least one)."
    )
    max_shard_retries: int = Field(3, ge=0, description="Resends of a shard whose replica died.")
    checkpoint_cache_size: int = Field(64, ge=1, description="Checkpoints each replica keeps in memory.")
    controller_loop_interval_s: float = Field(
        0.5, gt=0,
        description="How often the Serve controller this driver starts wakes (Serve's default: 0.1 s). Each turn "
        "costs CPU that a local cluster takes from the busy replicas; autoscaling still reacts well within "
        "upscale_delay_s. A running Serve controller (say, a RayService's) keeps its own.",
    )
