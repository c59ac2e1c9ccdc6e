"""Token authentication stays on: the session's local cluster runs in token mode, and a driver with the
wrong token is turned away with an error that says what to set."""

import os
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
