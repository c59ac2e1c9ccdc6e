"""Two coordinator processes on one Redis and one shared state folder, as in a deployment with two
replicas: concurrent submits with one request id make one job, and no job runs on two coordinators at
once, also when one of them is SIGKILLed mid-job and started again while the other runs a job."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator
from gbair.coordinator.records import JobStatus
from gbair.coordinator.store import Store
from gbair.v1 import gbair_pb2 as pb
from labeled_files import write_dataset_files
from test_service import TOKEN_A, coordinator_settings

LEASE_TTL_S = 3.0
KILL_TIMEOUT_S = 120.0
SAME_REQUEST_SUBMITS = 50


def coordinator_id(coordinator: LocalCoordinator) -> str:
    """The id of the coordinator process running now, from its start-up log line."""
    return re.findall(r"coordinator id (\w+)", coordinator.log_path.read_text())[-1]


def markers(events: list) -> list[tuple[str, str]]:
    """(phase, coordinator id) of each start or resume of a job, in JobEvent records or messages."""
    return [(e.phase, e.message.rsplit(" ", 1)[-1]) for e in events if e.phase in ("started", "resumed")]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, redis_url, tiny_model_dir):
    folder = tmp_path_factory.mktemp("pair")
    settings = coordinator_settings(
        redis_url, tiny_model_dir, state_dir=str(folder / "state"), lease_ttl_s=LEASE_TTL_S, max_queued_jobs=6,
        job_defaults={
            "model": {"num_virtual_tokens": 4, "max_length": 32},
            "train": {"epochs": 1, "batch_size": 8, "learning_rate": 0.03},
            "recovery": {"rounds": 1, "budget": 4, "patience": 5},
        },
    )
    first = LocalCoordinator(folder / "first", settings).start()
    second = LocalCoordinator(folder / "second", settings).start()
    with GbairClient(first.target, TOKEN_A) as client:
        dataset = client.upload_dataset("pair", *write_dataset_files(folder / "data").values())
    try:
        yield first, second, dataset, Store.connect(redis_url, settings["redis_prefix"])
    finally:
        first.stop()
        second.stop()


def test_concurrent_submits_with_one_request_id_make_one_job(pair):
    first, second, dataset, _ = pair
    spec = pb.JobSpec(dataset_id=dataset.dataset_id, seed=11)
    with GbairClient(first.target, TOKEN_A) as to_first, GbairClient(second.target, TOKEN_A) as to_second:
        clients = [to_first, to_second]
        with ThreadPoolExecutor(SAME_REQUEST_SUBMITS) as threads:
            answers = list(threads.map(
                lambda k: clients[k % 2].submit(spec, request_id="retried-fifty-times"), range(SAME_REQUEST_SUBMITS),
            ))
        jobs = [j for j in to_first.list_jobs() if j.request_id == "retried-fifty-times"]
    assert len(jobs) == 1
    assert {a.job_id for a in answers} == {jobs[0].job_id}


def test_no_job_runs_on_two_coordinators(pair):
    first, second, dataset, store = pair
    with GbairClient(second.target, TOKEN_A) as client:
        job_ids = [
            client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.2, seed=seed), request_id=f"pair-{seed}").job_id
            for seed in range(4)
        ]
        killed_id = coordinator_id(first)
        killed_job = _kill_mid_job(first, killed_id, job_ids, store)
        # A job that runs until cancelled, on the second coordinator (the only one left): the first,
        # started again meanwhile, must leave it alone at start-up and at its heartbeats.
        endless_id = client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, epochs=1000), request_id="endless").job_id
        _wait_until_started(endless_id, store)
        first.restart()
        time.sleep(2 * LEASE_TTL_S)
        endless = [event for _, event in store.events(endless_id, "0", 1)]
        client.cancel(endless_id)
        events = {job_id: list(client.watch(job_id)) for job_id in job_ids}
        statuses = {job_id: client.get_job(job_id).status for job_id in job_ids}

    assert markers(endless) == [("started", coordinator_id(second))], "a running job was taken from a live coordinator"
    assert endless[-1].status == JobStatus.RUNNING
    assert set(statuses.values()) == {pb.SUCCEEDED}, statuses
    for job_id, job_events in events.items():
        assert [e.phase for e in job_events].count("started") == 1, job_id
        assert [e.round for e in job_events if e.phase == "round"] == [0, 1], f"job {job_id} recorded a round twice"
    ran_on = {job_id: [owner for _, owner in markers(job_events)] for job_id, job_events in events.items()}
    # The watcher of the killed job saw it start on the killed coordinator and resume on another.
    assert markers(events[killed_job])[0] == ("started", killed_id), ran_on
    assert markers(events[killed_job])[-1][0] == "resumed" and ran_on[killed_job][-1] != killed_id, ran_on
    assert len({owner for owners in ran_on.values() for owner in owners}) >= 2, ran_on
    for job_id, owners in ran_on.items():
        if job_id != killed_job:
            assert len(set(owners)) == 1, f"job {job_id} moved between live coordinators: {ran_on}"


def _wait_until_started(job_id: str, store: Store) -> None:
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while not markers([event for _, event in store.events(job_id, "0", 1)]):
        assert time.monotonic() < deadline, f"job {job_id} did not start"
        time.sleep(0.1)


def _kill_mid_job(coordinator: LocalCoordinator, its_id: str, job_ids: list[str], store: Store) -> str:
    """SIGKILL `coordinator` while it runs one of the jobs, before that job's first round is recorded."""
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while time.monotonic() < deadline:
        for job_id in job_ids:
            events = [event for _, event in store.events(job_id, "0", 1)]
            started = markers(events)
            if started and started[-1][1] == its_id and not any(e.phase == "round" for e in events):
                coordinator.kill()
                return job_id
        time.sleep(0.05)
    raise AssertionError("the coordinator ran no job that could be killed mid-job")
