"""Coordinator processes on one Redis and one shared state folder, as in a deployment with two
replicas: concurrent submits with one request id make one job, and no job runs on two coordinators at
once: a second coordinator started while the first runs a job leaves it alone, and takes it over only
once the first is SIGKILLed and its lease has expired."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator
from gbair.coordinator.store import Store
from gbair.v1 import gbair_pb2 as pb
from job_waits import endless_job
from labeled_files import write_dataset_files
from test_service import TOKEN_A, coordinator_settings

LEASE_TTL_S = 3.0
WAIT_TIMEOUT_S = 120.0
SAME_REQUEST_SUBMITS = 50


def coordinator_id(coordinator: LocalCoordinator) -> str:
    """The id of the coordinator process running now, from its start-up log line."""
    return re.findall(r"coordinator id (\w+)", coordinator.log_path.read_text())[-1]


def markers(events: list) -> list[tuple[str, str]]:
    """(phase, coordinator id) of each start or resume of a job, in JobEvent records or messages."""
    return [(e.phase, e.message.rsplit(" ", 1)[-1]) for e in events if e.phase in ("started", "resumed")]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, redis_url, tiny_model_dir):
    """Settings for coordinators sharing a Redis prefix and a state folder, and a data set there."""
    folder = tmp_path_factory.mktemp("pair")
    settings = coordinator_settings(
        redis_url, tiny_model_dir, state_dir=str(folder / "state"), lease_ttl_s=LEASE_TTL_S, max_queued_jobs=6,
        job_defaults={
            "model": {"num_virtual_tokens": 4, "max_length": 32},
            "train": {"epochs": 1, "batch_size": 8, "learning_rate": 0.03},
            "recovery": {"rounds": 1, "budget": 4, "patience": 5},
        },
    )
    return folder, settings


@pytest.fixture(scope="module")
def first(shared):
    folder, settings = shared
    with LocalCoordinator(folder / "first", settings) as coordinator:
        yield coordinator


@pytest.fixture(scope="module")
def dataset(shared, first):
    folder, _ = shared
    with GbairClient(first.target, TOKEN_A) as client:
        return client.upload_dataset("pair", *write_dataset_files(folder / "data").values())


def test_concurrent_submits_with_one_request_id_make_one_job(first, dataset):
    spec = pb.JobSpec(dataset_id=dataset.dataset_id, seed=11)
    with GbairClient(first.target, TOKEN_A) as client:
        with ThreadPoolExecutor(SAME_REQUEST_SUBMITS) as threads:
            answers = list(threads.map(
                lambda _: client.submit(spec, request_id="retried-fifty-times"), range(SAME_REQUEST_SUBMITS),
            ))
        jobs = [j for j in client.list_jobs() if j.request_id == "retried-fifty-times"]
    assert len(jobs) == 1
    assert {a.job_id for a in answers} == {jobs[0].job_id}


def test_no_job_runs_on_two_coordinators(shared, redis_url, first, dataset):
    folder, settings = shared
    store = Store.connect(redis_url, settings["redis_prefix"])
    first_id = coordinator_id(first)
    with GbairClient(first.target, TOKEN_A) as to_first:
        endless_id = to_first.submit(endless_job(dataset.dataset_id), request_id="endless").job_id
    _wait_for_markers(store, endless_id, [("started", first_id)])

    with LocalCoordinator(folder / "second", settings) as second, GbairClient(second.target, TOKEN_A) as client:
        second_id = coordinator_id(second)
        assert markers(store.events(endless_id)) == [("started", first_id)], "taken from a live coordinator at start-up"
        # While the second coordinator heartbeats and runs these jobs, the first keeps its job.
        job_ids = [
            client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.2, seed=seed), request_id=f"pair-{seed}").job_id
            for seed in range(2)
        ]
        events = {job_id: _watch(client, job_id) for job_id in job_ids}
        before_kill = markers(store.events(endless_id))
        first.kill()
        _wait_for_markers(store, endless_id, [("started", first_id), ("resumed", second_id)], [first, second])
        client.cancel(endless_id)
        endless = _watch(client, endless_id)

    assert before_kill == [("started", first_id)], "a running job was taken from a live coordinator"
    assert markers(endless) == [("started", first_id), ("resumed", second_id)]
    assert endless[-1].phase == "cancelled"
    for job_id, job_events in events.items():
        assert markers(job_events) == [("started", second_id)], job_id
        assert [e.round for e in job_events if e.phase == "round"] == [0, 1], job_id
        assert job_events[-1].phase == "succeeded", job_id


def _watch(client: GbairClient, job_id: str) -> list[pb.JobEvent]:
    """Every event of the job until it ends, or an error after WAIT_TIMEOUT_S."""
    return list(client.stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=client.metadata, timeout=WAIT_TIMEOUT_S))


def _wait_for_markers(
    store: Store, job_id: str, expected: list[tuple[str, str]], coordinators: Sequence[LocalCoordinator] = ()
) -> None:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while (found := markers(store.events(job_id))) != expected:
        assert time.monotonic() < deadline, f"job {job_id}: {found}, not {expected}\n" + _scheduling_state(
            store, job_id, coordinators
        )
        time.sleep(0.1)


def _scheduling_state(store: Store, job_id: str, coordinators: Sequence[LocalCoordinator]) -> str:
    """What the takeover depends on, for a failure's message: the job's lease, the running list and the
    queue (the store's own keys), the job's last events, and each coordinator's process state and log."""
    lease = store._lease_key(job_id)
    lines = [
        f"lease holder {store.redis.get(lease)!r}, ttl {store.redis.pttl(lease)} ms",
        f"running {store.redis.lrange(store._key('running'), 0, -1)}",
        f"queue {store.redis.lrange(store._key('queue'), 0, -1)}",
        f"last events {[(e.phase, e.message) for e in store.events(job_id)[-5:]]}",
    ]
    for coordinator in coordinators:
        exit_code = coordinator.process.poll() if coordinator.process else None
        lines.append(f"--- {coordinator.log_path} (exit code {exit_code}):\n{coordinator.log_path.read_text()[-3000:]}")
    return "\n".join(lines)
