"""What every Serve config of the influence service must say, wherever it lives (deploy/, k8s/)."""

from __future__ import annotations

import typing

from pydantic import BaseModel
from ray import serve
from ray.serve.schema import ServeDeploySchema

from gbair.serving.config import ServingConfig
from gbair.serving.deployment import InfluenceScorer, build_app
from gbair.serving.driver import controller_options


def check_influence_application(config: dict) -> ServeDeploySchema:
    unknown = unknown_fields(ServeDeploySchema, config)
    assert not unknown, f"fields Ray Serve does not know (it would drop them): {unknown}"
    schema = ServeDeploySchema.model_validate(config)
    assert schema.controller_options is not None, "the controller's loop interval is part of every config"
    assert schema.controller_options.runtime_env == controller_options(ServingConfig())["runtime_env"], (
        "the controller wakes as often as on a cluster the driver starts"
    )
    (application,) = schema.applications
    assert application.name == ServingConfig().app_name
    assert application.import_path == f"{build_app.__module__}:{build_app.__name__}"
    (deployment,) = application.deployments
    assert deployment.name == InfluenceScorer.name
    assert deployment.max_ongoing_requests == InfluenceScorer.max_ongoing_requests == 1, (
        "a replica takes one shard at a time, so none waits behind a busy replica while another idles"
    )
    max_backoff_s = InfluenceScorer._deployment_config.request_router_config.max_backoff_s
    assert (deployment.request_router_config or {}).get("max_backoff_s") == max_backoff_s < 0.5, (
        "shards waiting in the router retry sooner than Serve's default half second"
    )
    autoscaling = deployment.autoscaling_config
    assert 1 <= autoscaling["min_replicas"] <= autoscaling["max_replicas"]
    assert autoscaling["target_ongoing_requests"] <= deployment.max_ongoing_requests
    assert autoscaling["upscale_delay_s"] == ServingConfig().upscale_delay_s, "Serve's 30 s outlasts a round's scoring"
    assert application.args["threads"] <= deployment.ray_actor_options.num_cpus
    assert isinstance(build_app(application.args), serve.Application)
    return schema


def unknown_fields(model: type[BaseModel], data, where: str = "") -> list[str]:
    """Keys that `model` does not define, at any depth. Ray Serve's schemas ignore them, so a misspelt
    field in a Serve config would otherwise be dropped without a word, on a cluster as here."""
    if isinstance(data, list):
        return [found for index, item in enumerate(data) for found in unknown_fields(model, item, f"{where}[{index}]")]
    if not isinstance(data, dict):
        return []
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    found = [f"{where}.{key}" for key in data if key not in fields]
    for key, field in fields.items():
        for nested in _models_in(field.annotation):
            if key in data:
                found += unknown_fields(nested, data[key], f"{where}.{key}")
    return found


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in typing.get_args(annotation) for model in _models_in(argument)]
