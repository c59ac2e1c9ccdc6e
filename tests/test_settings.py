"""Coordinator settings: a YAML file, then GBAIR_* environment variables, then command-line overrides."""

import pytest
import yaml
from pydantic import ValidationError

from gbair.coordinator.settings import load_settings

TOKEN = "a-token-of-sixteen-chars"


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "coordinator.yaml"
    path.write_text(yaml.safe_dump({
        "listen": "0.0.0.0:50051",
        "tokens": [{"token": TOKEN, "tenant": "file"}],
        "ray": {"address": "ray://head:10001", "num_workers": 2, "train_resources": {"gbair-train": 1}},
    }))
    return path


def test_the_environment_overrides_the_file_and_options_override_both(settings_file):
    settings = load_settings(
        settings_file,
        environ={"GBAIR_LISTEN": "127.0.0.1:1", "GBAIR_REDIS_URL": "redis://:pw@redis:6379/0"},
        listen="127.0.0.1:2",
    )
    assert settings.listen == "127.0.0.1:2"
    assert settings.redis_url == "redis://:pw@redis:6379/0"


def test_ray_variables_replace_single_keys_of_the_files_ray_section(settings_file):
    settings = load_settings(settings_file, environ={"GBAIR_RAY_USE_GPU": "true", "GBAIR_RAY_STORAGE_PATH": "s3://b/p"})
    assert settings.ray.use_gpu is True
    assert settings.ray.storage_path == "s3://b/p"
    assert settings.ray.address == "ray://head:10001"
    assert (settings.ray.num_workers, settings.ray.train_resources) == (2, {"gbair-train": 1.0})
    assert load_settings(settings_file, environ={}).ray.use_gpu is False


def test_tokens_from_the_environment_are_added_to_the_files(settings_file):
    settings = load_settings(settings_file, environ={"GBAIR_TOKENS": f"{'b' * 16}=team,{'c' * 16}=audit:read"})
    assert [(t.tenant, t.read_only) for t in settings.tokens] == [("file", False), ("team", False), ("audit", True)]


@pytest.mark.parametrize(
    "environ, error",
    [
        ({"GBAIR_TOKENS": "REPLACE-ME"}, "token=tenant"),
        ({"GBAIR_TOKENS": f"{'b' * 16}=team:admin"}, "unknown role"),
        ({"GBAIR_RAY_USE_GPU": "perhaps"}, "use_gpu"),
        ({"GBAIR_TOKENS": "short=team"}, "16 characters"),
        # Before the embedded Redis and Ray start, not when the gRPC server would read the file.
        ({"GBAIR_TLS_CERT": "/no/such/cert.pem", "GBAIR_TLS_KEY": "/no/such/key.pem"}, "tls_cert"),
    ],
)
def test_bad_settings_name_what_is_wrong(settings_file, environ, error):
    with pytest.raises((ValueError, ValidationError), match=error):
        load_settings(settings_file, environ=environ)
