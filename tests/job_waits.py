"""Waiting, in tests, for a job on a live coordinator to reach a status, and a job that outlasts any test."""

import time

from gbair.v1 import gbair_pb2 as pb


def wait_for_status(client, job_id: str, status: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get_job(job_id).status != status:
        assert time.monotonic() < deadline, f"job {job_id} never became {pb.JobStatus.Name(status)}"
        time.sleep(0.2)


def endless_job(dataset_id: str) -> pb.JobSpec:
    """A job that runs until cancelled, on the tests' small data sets: 1,000 epochs a round and a round per
    removed example. One round of 1,000 epochs with the default method ends about 15 s after it starts (a
    round 0 that leaves no validation error ends the job), so on a slow machine such a "long" job ended
    before the test was done with it."""
    return pb.JobSpec(dataset_id=dataset_id, epochs=1000, method="loss", rounds=100, patience=100, budget=1)
