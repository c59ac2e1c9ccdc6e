"""deploy/serve_config.yaml is a valid Serve config that builds gbair's influence deployment."""

from pathlib import Path

import yaml
from ray import serve
from ray.serve.schema import ServeDeploySchema

from gbair.distributed.config import ServingConfig
from gbair.serving.deployment import InfluenceScorer, build_app

CONFIG = Path(__file__).parents[2] / "deploy" / "serve_config.yaml"


def test_serve_config_is_valid_and_builds_the_influence_deployment():
    schema = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    (application,) = schema.applications
    assert application.name == ServingConfig().app_name
    assert application.import_path == f"{build_app.__module__}:{build_app.__name__}"
    (deployment,) = application.deployments
    assert deployment.name == InfluenceScorer.name
    autoscaling = deployment.autoscaling_config
    assert 1 <= autoscaling["min_replicas"] <= autoscaling["max_replicas"]
    assert autoscaling["target_ongoing_requests"] <= deployment.max_ongoing_requests
    assert isinstance(build_app(application.args), serve.Application)
