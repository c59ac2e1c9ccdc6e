"""Token authentication stays on: the session's local cluster runs in token mode, and a driver with the
wrong token is turned away with an error that says what to set."""

import os
import secrets
import subprocess
import sys

import pytest
import ray

from gbair.distributed.config import RayConfig

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


# Ray's node gives its raylet a fixed 30 s to register; the clock in ray._private.node jumps past it at the
# first miss, so that a node that misses once is shown in seconds.
START_WITH_ONE_MISSED_REGISTRATION = """
import time, psutil, ray
import ray._private.node as node_module
import ray._private.services as services
from gbair.distributed.cluster import connect
from gbair.distributed.config import RayConfig

misses = {"left": 1, "done": 0}
register = services.get_node

def get_node_missing_once(*args, **kwargs):
    if misses["left"]:
        misses["left"] -= 1
        misses["done"] += 1
        raise RuntimeError("not registered yet")
    return register(*args, **kwargs)

class ClockPastTheWaitAtEachMiss:
    def __getattr__(self, name):
        return getattr(time, name)

    def monotonic(self):
        return time.monotonic() + 31 * misses["done"]

services.get_node = get_node_missing_once
node_module.time = ClockPastTheWaitAtEachMiss()
connect(RayConfig())
assert ray.get(ray.remote(lambda: 7).remote()) == 7
print(sorted(process.name() for process in psutil.Process().children(recursive=True)))
ray.shutdown()
"""


def test_a_local_node_that_misses_its_registration_once_is_stopped_and_started_again():
    env = {**os.environ, "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    run = subprocess.run(
        [sys.executable, "-c", START_WITH_ONE_MISSED_REGISTRATION], env=env, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "starting it once more" in run.stderr
    processes = run.stdout.strip().splitlines()[-1]
    assert processes.count("'gcs_server'") == 1 and processes.count("'raylet'") == 1, processes


def test_a_local_node_that_never_registers_in_time_is_named_as_such(monkeypatch):
    from gbair.distributed import cluster

    starts = []

    def node_timed_out(**options):
        # Ray's own words, from ray._private.node.Node when the raylet misses its fixed 30 s.
        starts.append(options)
        raise Exception("The current node timed out during startup. This could happen because some of the "
                        "raylet failed to startup or the GCS has become overloaded.")

    monkeypatch.setattr(cluster.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(cluster.ray, "init", node_timed_out)
    with pytest.raises(cluster.ClusterStartError, match="did not register within Ray's 30 s, 2 times"):
        cluster.connect(RayConfig())
    assert len(starts) == 2
