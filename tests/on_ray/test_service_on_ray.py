"""The coordinator with its default backend: a `gbair serve` process that joins the session's Ray cluster,
trains on Ray Train and scores on the Ray Serve influence service, and flags what the in-process backend
flags for the same job."""

from __future__ import annotations

import json

import ray

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator
from gbair.v1 import gbair_pb2 as pb
from labeled_files import write_dataset_files
from test_service import TOKEN_A, coordinator_settings


def run_job_to_the_end(state_dir, settings: dict, files) -> dict:
    with LocalCoordinator(state_dir, settings) as coordinator, GbairClient(coordinator.target, TOKEN_A) as client:
        dataset = client.upload_dataset("reviews", files["train"], files["validation"], files["test"])
        job = client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.25, seed=1, rounds=1))
        for _ in client.watch(job.job_id):
            pass
        finished = client.get_job(job.job_id)
    assert finished.status == pb.SUCCEEDED, finished.error
    return json.loads(finished.report_json)


def test_a_job_on_ray_flags_what_the_in_process_backend_flags(
    tmp_path, redis_url, tiny_model_dir, ray_cluster, influence_handle
):
    files = write_dataset_files(tmp_path / "data")
    on_ray = coordinator_settings(redis_url, tiny_model_dir, backend="ray", ray={
        "address": ray.get_runtime_context().gcs_address,
        "storage_path": str(tmp_path / "storage"),
        "serving": ray_cluster.serving.model_dump(),
    })
    in_process = coordinator_settings(redis_url, tiny_model_dir)
    ray_report = run_job_to_the_end(tmp_path / "ray", on_ray, files)
    local_report = run_job_to_the_end(tmp_path / "local", in_process, files)

    assert ray_report["rounds"][0]["flagged_ids"] == local_report["rounds"][0]["flagged_ids"]
    assert len(ray_report["rounds"][0]["flagged_ids"]) == 4
    assert ray_report["rounds"][0]["val_accuracy"] == local_report["rounds"][0]["val_accuracy"]
    # The checkpoints went through the cluster's storage, where the Serve replicas read them, and were
    # removed from it once each round was recorded: the job folder keeps them.
    assert (tmp_path / "storage").is_dir()
    assert not list((tmp_path / "storage").rglob("pet_state.safetensors"))
    assert list((tmp_path / "ray").rglob("round-1.pt"))
