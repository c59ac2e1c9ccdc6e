"""Token authentication stays on: the session's local cluster runs in token mode, and a driver with the
wrong token is turned away with an error that says what to set."""

import os
import secrets
import subprocess
import sys

import pytest
import ray

CONNECT = "from gbair.distributed.cluster import connect; from gbair.distributed.config import RayConfig; connect(RayConfig(address={address!r}))"


def test_the_local_cluster_keeps_token_authentication_on(ray_cluster):
    assert os.environ["RAY_AUTH_MODE"] == "token"


@pytest.mark.slow  # Ray retries the refused connection for about 30 s before giving up
def test_a_driver_with_the_wrong_token_gets_a_clear_error(ray_cluster):
    address = ray.get_runtime_context().gcs_address
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-cluster-token"}
    run = subprocess.run(
        [sys.executable, "-c", CONNECT.format(address=address)], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "ClusterAccessError" in run.stderr and "RAY_AUTH_TOKEN" in run.stderr, run.stderr[-2000:]


def test_settings_without_an_address_start_a_local_cluster_whatever_ray_address_says():
    # RAY_ADDRESS set in a user's shell used to make Ray join that cluster and then refuse num_cpus.
    script = CONNECT.format(address=None) + "; import ray; print(ray.get_runtime_context().gcs_address); ray.shutdown()"
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert not run.stdout.strip().endswith(":1")


def test_a_local_node_that_does_not_register_in_time_is_named_as_such(monkeypatch):
    from gbair.distributed import cluster
    from gbair.distributed.config import RayConfig

    def node_timed_out(**options):
        # Ray's own words, from ray._private.node.Node when the raylet misses its fixed 30 s.
        raise Exception("The current node timed out during startup. This could happen because some of the "
                        "raylet failed to startup or the GCS has become overloaded.")

    monkeypatch.setattr(cluster.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(cluster.ray, "init", node_timed_out)
    with pytest.raises(cluster.ClusterStartError, match="did not register within Ray's 30 s"):
        cluster.connect(RayConfig())
