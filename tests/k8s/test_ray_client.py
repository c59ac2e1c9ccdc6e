"""The coordinator as k8s/ deploys it: the settings of its ConfigMap, joining the Ray cluster with Ray
Client (`ray://`) and token authentication, on a cluster whose head runs with the head container's
environment from the rendered RayService and announces the train group's custom resources (for the
training workers and the model actors) as two train pods would."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from gbair.coordinator.local import free_port
from gbair.distributed.config import RayConfig
from labeled_files import write_dataset_files
from on_ray.test_service_on_ray import run_job_to_the_end
from test_service import coordinator_settings
from k8s.rendering import announced_resources, one, ray_pod_specs, render

OVERLAY = Path(__file__).parents[2] / "k8s" / "overlays" / "cpu"


@pytest.fixture
def documents():
    return render(OVERLAY)


@pytest.fixture
def head_address(documents, tmp_path, monkeypatch):
    """`ray start --head` with the head container's environment and two train pods' custom resources."""
    rayservice = one(documents, "RayService")
    train_pods = {name: 2 * amount for name, amount in announced_resources(ray_pod_specs(rayservice)["train"]).items()}
    (settings_text,) = one(documents, "ConfigMap")["data"].values()
    # Room for the ConfigMap's training workers beside the influence replicas, which stay up between rounds.
    cpus = RayConfig(**yaml.safe_load(settings_text)["ray"]).logical_cpus
    head = rayservice["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    head_environment = {variable["name"]: variable["value"] for variable in head["env"] if "value" in variable}
    coordinator = one(documents, "Deployment", "gbair-coordinator")["spec"]["template"]["spec"]["containers"][0]
    (auth_mode,) = [v["value"] for v in coordinator["env"] if v["name"] == "RAY_AUTH_MODE"]
    monkeypatch.setenv("RAY_AUTH_MODE", auth_mode)  # the coordinator child inherits these
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(16))
    client_port = free_port()
    # A temp folder of its own, so the address file `ray start` leaves behind cannot make a later
    # `ray.init()` in the test session join this stopped cluster; short, for Ray's socket paths.
    temp_dir = tempfile.mkdtemp(prefix="gbair-ray-", dir="/tmp")
    log = (tmp_path / "ray-head.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
            "--port", str(free_port()), "--ray-client-server-port", str(client_port),
            "--dashboard-agent-listen-port", str(free_port()), "--include-dashboard", "false",
            "--temp-dir", temp_dir, "--num-cpus", str(cpus), "--resources", json.dumps(train_pods), "--disable-usage-stats",
        ],
        env={**os.environ, **head_environment}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    yield f"ray://127.0.0.1:{client_port}"
    os.killpg(process.pid, signal.SIGTERM)  # --block stops every process of the node on the way out
    process.wait(timeout=60)
    log.close()
    shutil.rmtree(temp_dir, ignore_errors=True)


def test_the_deployed_coordinator_runs_a_job_through_ray_client_with_token_auth(
    documents, head_address, tmp_path, redis_url, tiny_model_dir
):
    config_map = one(documents, "ConfigMap")
    (text,) = config_map["data"].values()
    settings = yaml.safe_load(text)
    settings["ray"].update(address=head_address, storage_path=str(tmp_path / "checkpoints"))
    settings.pop("listen")
    settings.pop("state_dir")
    test_only = ("redis_url", "redis_prefix", "tokens", "models", "job_defaults", "torch_threads")
    settings.update({k: v for k, v in coordinator_settings(redis_url, tiny_model_dir).items() if k in test_only})

    report, explanations = run_job_to_the_end(tmp_path / "state", settings, write_dataset_files(tmp_path / "data"))

    assert len(report["rounds"][0]["flagged_ids"]) == 4
    assert all(explanation.proponents or explanation.opponents for explanation in explanations)
    # Training wrote the checkpoints where the Serve replicas and the coordinator read them, and they were
    # removed from there once each round was recorded: the job folder keeps them.
    assert (tmp_path / "checkpoints").is_dir()
    assert not list((tmp_path / "checkpoints").rglob("pet_state.safetensors"))
    assert list((tmp_path / "state").rglob("round-1.pt"))
