"""Crash and resume: a coordinator killed with SIGKILL mid-job and started again goes on from the last
step it finished, repeats no finished round, and ends with the result of an uninterrupted run."""

from __future__ import annotations

import json

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator
from gbair.coordinator.store import Store
from gbair.v1 import gbair_pb2 as pb
from labeled_files import write_dataset_files
from test_service import TOKEN_A, coordinator_settings


def _watch_until(client: GbairClient, job_id: str, phase: str, round_index: int) -> None:
    for event in client.watch(job_id):
        if event.phase == phase and event.round == round_index:
            return
    raise AssertionError(f"the job ended before {phase} of round {round_index}")


def _without_timings(report_json: str) -> dict:
    report = json.loads(report_json)
    for row in report["rounds"]:
        del row["timings"]
    return report


def test_sigkill_mid_job_resumes_without_repeating_a_round(tmp_path, redis_url, tiny_model_dir):
    files = write_dataset_files(tmp_path / "data", train=120, validation=24, test=8)
    # The restarted coordinator takes the job back once the killed one's lease has expired.
    settings = coordinator_settings(redis_url, tiny_model_dir, lease_ttl_s=3.0, job_defaults={
        "model": {"num_virtual_tokens": 4, "max_length": 32},
        "train": {"epochs": 3, "batch_size": 8, "learning_rate": 0.03},
        "recovery": {"rounds": 2, "budget": 10, "patience": 5},
    })
    store = Store.connect(redis_url, settings["redis_prefix"])
    coordinator = LocalCoordinator(tmp_path / "state", settings).start()
    try:
        with GbairClient(coordinator.target, TOKEN_A) as client:
            dataset = client.upload_dataset("resume", files["train"], files["validation"], files["test"])
            spec = pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.2, seed=3)
            job_id = client.submit(spec, request_id="interrupted").job_id

            # Kill 1: right after round 1's training was saved, while it is being scored.
            _watch_until(client, job_id, "trained", 1)
            coordinator.kill()
        killed = store.job(None, job_id)
        assert killed.status == pb.JobStatus.Name(pb.RUNNING).lower()
        assert [r.round for r in killed.state.rounds] == [0] and killed.trained_round == 1

        coordinator.restart()
        with GbairClient(coordinator.target, TOKEN_A) as client:
            # Kill 2: in the middle of round 2's training.
            _watch_until(client, job_id, "train", 2)
            coordinator.kill()
        coordinator.restart()
        with GbairClient(coordinator.target, TOKEN_A) as client:
            events = list(client.watch(job_id))
            resumed = client.get_job(job_id)
            assert resumed.status == pb.SUCCEEDED, resumed.error
            uninterrupted_id = client.submit(spec, request_id="uninterrupted").job_id
            list(client.watch(uninterrupted_id))
            uninterrupted = client.get_job(uninterrupted_id)
    finally:
        coordinator.stop()

    assert [e.round for e in events if e.phase == "round"] == [0, 1, 2], "a finished round was repeated"
    assert [e.round for e in events if e.phase == "trained"] == [0, 1, 2], "a saved training was repeated"
    assert [e.phase for e in events].count("started") == 1
    assert uninterrupted.status == pb.SUCCEEDED
    assert _without_timings(resumed.report_json) == _without_timings(uninterrupted.report_json)
