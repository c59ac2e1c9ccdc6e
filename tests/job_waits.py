"""Waiting, in tests, for a job on a live coordinator to reach a status."""

import time

from gbair.v1 import gbair_pb2 as pb


def wait_for_status(client, job_id: str, status: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get_job(job_id).status != status:
        assert time.monotonic() < deadline, f"job {job_id} never became {pb.JobStatus.Name(status)}"
        time.sleep(0.2)
