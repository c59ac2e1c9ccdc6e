"""One real local Ray cluster for the whole test session, with the influence service on it, and a tiny
model saved as a model folder so that workers and replicas build it from a ModelConfig like any other."""

import os
import secrets
from pathlib import Path

import pytest
import ray
import torch
from ray import serve

from conftest import tiny_classifier
from gbair.core.config import GbairConfig
from gbair.distributed import RayConfig, connect
from gbair.serving import deploy


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    # A token of the session's own, so the tests neither read nor write ~/.ray/auth_token.
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(16)
    config = RayConfig(
        storage_path=str(tmp_path_factory.mktemp("ray-storage")),
        serving={"min_replicas": 1, "max_replicas": 2, "shard_size": 6, "checkpoint_cache_size": 8},
    )
    started = connect(config)
    assert started, "a Ray cluster was already running in the test process"
    yield config
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def influence_handle(ray_cluster):
    return deploy(ray_cluster.serving)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, minilm_tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("tiny-bert")
    classifier = tiny_classifier("encoder", minilm_tokenizer, dtype=torch.float32)
    classifier.peft_model.get_base_model().save_pretrained(folder)
    minilm_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_config(tiny_model_dir) -> GbairConfig:
    return GbairConfig(
        model={"name_or_path": str(tiny_model_dir), "kind": "encoder", "num_virtual_tokens": 4, "max_length": 32},
        train={"epochs": 3, "batch_size": 8, "learning_rate": 0.03, "seed": 0},
        influence={"batch_size": 4},
        recovery={"rounds": 1, "budget": 4},
    )
