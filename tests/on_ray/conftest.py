"""One real local Ray cluster for the whole test session, with the influence service on it. Workers and
replicas build the tiny model from its folder (tests/conftest.py's tiny_model_dir) like any other."""

import os
import secrets

import pytest
import ray
from ray import serve

from gbair.core.config import GbairConfig
from gbair.distributed.cluster import connect
from gbair.distributed.config import RayConfig
from gbair.serving.driver import deploy


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    # A token of the session's own, so the tests neither read nor write ~/.ray/auth_token.
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(16)
    config = RayConfig(
        storage_path=str(tmp_path_factory.mktemp("ray-storage")),
        serving={"min_replicas": 1, "max_replicas": 2, "shard_size": 6, "checkpoint_cache_size": 8},
    )
    # Announce room for the two-worker training test beside both replicas: Serve keeps an upscaled
    # replica for minutes, and training would wait for its CPU.
    started = connect(config.model_copy(update={"num_workers": 2}))
    assert started, "a Ray cluster was already running in the test process"
    yield config
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def influence_handle(ray_cluster):
    return deploy(ray_cluster.serving)


@pytest.fixture(scope="session")
def tiny_config(tiny_model_dir) -> GbairConfig:
    return GbairConfig(
        model={"name_or_path": str(tiny_model_dir), "kind": "encoder", "num_virtual_tokens": 4, "max_length": 32},
        train={"epochs": 3, "batch_size": 8, "learning_rate": 0.03, "seed": 0},
        influence={"batch_size": 4},
        recovery={"rounds": 1, "budget": 4},
    )
