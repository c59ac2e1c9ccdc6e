"""Score a training set on the influence service: cut the training set into shards, send them all at once
through a DeploymentHandle with a reference to the query gradients in the object store, resend a shard
whose replica died, and gather the statistics in order."""

from __future__ import annotations

import logging

import ray
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import RayServeException
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from gbair.core.config import ModelConfig
from gbair.core.influence import InfluenceStatistics
from gbair.core.model.inputs import EncodedSet
from gbair.core.progress import Progress, no_progress
from gbair.serving.config import ServingConfig
from gbair.serving.deployment import InfluenceScorer
from gbair.serving.shards import ShardRequest, gather, split

CONTROL_LOOP_INTERVAL_VARIABLE = "RAY_SERVE_CONTROL_LOOP_INTERVAL_S"

# What a request meets when its replica dies under it (killed, out of memory, node lost).
REPLICA_LOST = (RayActorError, ActorUnavailableError)


class WaitingShardsFilter(logging.Filter):
    """Drops Serve's router warning that a request is still waiting for a replica. A replica takes one shard
    at a time, so every shard beyond the replicas waits by design, and each would repeat the warning every
    few seconds for as long as scoring lasts."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to route request after ")


WAITING_SHARDS_FILTER = WaitingShardsFilter()


def deploy(config: ServingConfig) -> DeploymentHandle:
    """The running influence application of that name (say, from a RayService), else a new one."""
    try:
        return serve.get_app_handle(config.app_name)
    except RayServeException:
        pass
    # Shards reach the service through deployment handles only, so no HTTP proxy is started.
    serve.start(proxy_location="Disabled", controller_options=controller_options(config))
    application = InfluenceScorer.options(
        autoscaling_config={
            "min_replicas": config.min_replicas,
            "max_replicas": config.max_replicas,
            "target_ongoing_requests": config.target_ongoing_requests,
            "upscale_delay_s": config.upscale_delay_s,
        },
        ray_actor_options={"num_cpus": config.cpus_per_replica, "num_gpus": config.gpus_per_replica},
    ).bind(threads=config.threads_per_replica, checkpoint_cache_size=config.checkpoint_cache_size)
    return serve.run(application, name=config.app_name, route_prefix=None)


def controller_options(config: ServingConfig) -> dict:
    """The Serve controller's options: its control loop's interval, read from the environment it starts in."""
    return {"runtime_env": {"env_vars": {CONTROL_LOOP_INTERVAL_VARIABLE: str(config.controller_loop_interval_s)}}}


class ShardedScoring:
    def __init__(self, handle: DeploymentHandle, config: ServingConfig):
        self.handle = handle
        self.config = config
        self.resent_shards = 0
        # The router logs through Serve's logger in this process; adding the same filter again is a no-op.
        logging.getLogger("ray.serve").addFilter(WAITING_SHARDS_FILTER)

    def statistics(
        self,
        model: ModelConfig,
        label_names: list[str],
        checkpoints: list[str],
        train: EncodedSet,
        queries: ray.ObjectRef,
        batch_size: int,
        progress: Progress = no_progress,
    ) -> InfluenceStatistics:
        """`queries` refers to the QueryGradients in the object store: every shard needs all of them, so each
        request carries only the reference."""
        shards = split(train, self.config.shard_size, batch_size)
        requests = [
            ShardRequest(model, list(label_names), list(checkpoints), queries, train.subset(positions), batch_size)
            for positions in shards
        ]
        responses = [self.handle.score.remote(request) for request in requests]
        parts, done = [], 0
        for position, (request, response) in enumerate(zip(requests, responses)):
            parts.append(self._result(position, request, response))
            done += len(request.shard)
            progress("influence", done, len(train))
        return gather(parts, shards, len(train))

    def _result(self, position: int, request: ShardRequest, response: DeploymentResponse) -> InfluenceStatistics:
        losses = 0
        while True:
            try:
                return response.result()
            except REPLICA_LOST as error:
                losses += 1
                if losses > self.config.max_shard_retries:
                    raise RuntimeError(
                        f"shard {position} ({len(request.shard)} examples) lost its replica {losses} times; giving up"
                    ) from error
                self.resent_shards += 1
                response = self.handle.score.remote(request)
