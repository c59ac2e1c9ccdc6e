"""deploy/serve_config.yaml is a valid Serve config that builds gbair's influence deployment."""

from pathlib import Path

import yaml

from serve_configs import check_influence_application

CONFIG = Path(__file__).parents[2] / "deploy" / "serve_config.yaml"


def test_serve_config_is_valid_and_builds_the_influence_deployment():
    check_influence_application(yaml.safe_load(CONFIG.read_text()))
