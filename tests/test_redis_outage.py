"""A Redis outage mid-job, as an operator meets it: the redis-server under a running coordinator is
SIGKILLed and started again on the same port with its append-only file. Meanwhile health says
NOT_SERVING and calls fail UNAVAILABLE; after it, health says SERVING again and the job ends with the
report of an uninterrupted run, with the same coordinator process throughout."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gbair.client import GbairClient
from gbair.coordinator.embedded_redis import redis_server_binary
from gbair.coordinator.local import LocalCoordinator, free_port
from gbair.coordinator.server import without_password
from gbair.v1 import gbair_pb2 as pb
from labeled_files import write_dataset_files
from test_resume import _watch_until, _without_timings
from test_service import TOKEN_A, coordinator_settings

HEALTH_TIMEOUT_S = 15.0


class PersistentRedis:
    """A redis-server that keeps every acknowledged write in its append-only file (fsync always), so a
    SIGKILL loses nothing and a restart on the same port and folder comes back with the same data.
    It needs a password, which the coordinator's log must not show."""

    PASSWORD = "outage-test-password"

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.PASSWORD}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.PASSWORD)

    def start(self) -> PersistentRedis:
        self.process = subprocess.Popen(
            [
                redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--requirepass", self.PASSWORD,
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:  # BusyLoadingError too, while it reads its file
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def persistent_redis(tmp_path):
    server = PersistentRedis(tmp_path).start()
    yield server
    server.kill()


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="gbair.v1.Gbair"), timeout=2).status
        except grpc.RpcError:
            return health_pb2.HealthCheckResponse.UNKNOWN


def _wait_for_health(target: str, status: int) -> float:
    """Seconds until health reports `status`."""
    start = time.monotonic()
    while _health(target) != status:
        assert time.monotonic() - start < HEALTH_TIMEOUT_S, f"health never became {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
        time.sleep(0.1)
    return time.monotonic() - start


def test_redis_killed_and_restarted_mid_job(tmp_path, persistent_redis, tiny_model_dir):
    files = write_dataset_files(tmp_path / "data")
    settings = coordinator_settings(persistent_redis.url, tiny_model_dir, job_defaults={
        "model": {"num_virtual_tokens": 4, "max_length": 32},
        "train": {"epochs": 1, "batch_size": 8, "learning_rate": 0.03},
        "recovery": {"rounds": 1, "budget": 6, "patience": 5},
    })
    with LocalCoordinator(tmp_path / "state", settings) as coordinator, GbairClient(coordinator.target, TOKEN_A, timeout_s=30) as client:
        pid = coordinator.process.pid
        dataset = client.upload_dataset("outage", files["train"], files["validation"], files["test"])
        spec = pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.2, seed=5)
        job_id = client.submit(spec, request_id="through-the-outage").job_id
        _watch_until(client, job_id, "trained", 0)

        persistent_redis.kill()
        _wait_for_health(coordinator.target, health_pb2.HealthCheckResponse.NOT_SERVING)
        with pytest.raises(grpc.RpcError) as during:
            client.get_job(job_id)
        assert during.value.code() == grpc.StatusCode.UNAVAILABLE, during.value.details()
        with pytest.raises(grpc.RpcError) as during:
            client.submit(spec, request_id="during-the-outage")
        assert during.value.code() == grpc.StatusCode.UNAVAILABLE

        persistent_redis.start()
        back_ms = time.time() * 1000
        _wait_for_health(coordinator.target, health_pb2.HealthCheckResponse.SERVING)
        events = list(client.watch(job_id))
        survived = client.get_job(job_id)
        assert survived.status == pb.SUCCEEDED, survived.error
        # A job submitted after the outage runs too: the scheduler is alive.
        uninterrupted_id = client.submit(spec, request_id="after-the-outage").job_id
        list(client.watch(uninterrupted_id))
        uninterrupted = client.get_job(uninterrupted_id)
        assert coordinator.process.pid == pid and coordinator.process.poll() is None, "the coordinator restarted"
        log = coordinator.log_path.read_text()
        # Stream ids start with Redis's clock in ms: the job ended after Redis came back, not before it died.
        [(last_event_id, _)] = persistent_redis.client().xrevrange(f"{settings['redis_prefix']}:job:{job_id}:events", count=1)
        assert int(last_event_id.split(b"-")[0]) >= back_ms

    assert uninterrupted.status == pb.SUCCEEDED, uninterrupted.error
    assert _without_timings(survived.report_json) == _without_timings(uninterrupted.report_json)
    assert [e.round for e in events if e.phase == "round"] == [0, 1], "a finished round was recorded twice"
    assert log.count("Redis is unreachable") == 1 and log.count("Redis is reachable again") == 1, log
    assert PersistentRedis.PASSWORD not in log


def test_redis_url_is_logged_without_its_password():
    assert without_password("redis://:s3cret@db:6379/0") == "redis://:***@db:6379/0"
    assert without_password("rediss://app:s3cret@db/1?password=other") == "rediss://app:***@db/1?password=***"
    assert without_password("unix:///state/redis/redis.sock") == "unix:///state/redis/redis.sock"
