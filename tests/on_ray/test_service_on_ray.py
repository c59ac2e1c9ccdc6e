"""The coordinator with its default backend: a `gbair serve` process that joins the session's Ray cluster,
trains on Ray Train, scores on the Ray Serve influence service, runs every other model computation in Ray
actors (building no model itself), and flags and explains what the in-process backend does for the same job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator
from gbair.v1 import gbair_pb2 as pb
from labeled_files import write_dataset_files
from test_service import TOKEN_A, coordinator_settings


NO_MODEL_GUARD = Path(__file__).parent.parent / "no_model_guard"


def run_job_to_the_end(state_dir, settings: dict, files) -> tuple[dict, list]:
    """The finished job's report, and explanations of a validation example against the training set and of
    a training example against the validation set (round 0)."""
    with LocalCoordinator(state_dir, settings) as coordinator, GbairClient(coordinator.target, TOKEN_A) as client:
        dataset = client.upload_dataset("reviews", files["train"], files["validation"], files["test"])
        job = client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.25, seed=1, rounds=1))
        for _ in client.watch(job.job_id):
            pass
        finished = client.get_job(job.job_id)
        assert finished.status == pb.SUCCEEDED, finished.error
        explanations = [
            client.explain(job.job_id, "v3", top=3, round=0),
            client.explain(job.job_id, "t7", top=3, round=0, against=pb.VALIDATION),
        ]
    return json.loads(finished.report_json), explanations


def _forbid_models_in_processes_started_from_here(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(NO_MODEL_GUARD), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("FORBID_PET_CLASSIFIER", "1")
    # The guard itself works: a process started with it cannot build a model.
    probe = subprocess.run(
        [sys.executable, "-c", "from gbair.core.model.pet import PetClassifier; PetClassifier(None, None, 'encoder', [], None)"],
        capture_output=True, text=True,
    )
    assert probe.returncode != 0 and "must hold no model" in probe.stderr, probe.stderr


def test_a_job_on_ray_flags_and_explains_what_the_in_process_backend_does_and_builds_no_model_in_the_coordinator(
    tmp_path, redis_url, tiny_model_dir, ray_cluster, influence_handle, monkeypatch
):
    files = write_dataset_files(tmp_path / "data")
    on_ray = coordinator_settings(redis_url, tiny_model_dir, backend="ray", ray={
        "address": ray.get_runtime_context().gcs_address,
        "storage_path": str(tmp_path / "storage"),
        "serving": ray_cluster.serving.model_dump(),
    })
    in_process = coordinator_settings(redis_url, tiny_model_dir)
    with monkeypatch.context() as guarded:
        _forbid_models_in_processes_started_from_here(guarded)
        ray_report, ray_explanations = run_job_to_the_end(tmp_path / "ray", on_ray, files)
    local_report, local_explanations = run_job_to_the_end(tmp_path / "local", in_process, files)

    for on_cluster, here in zip(ray_explanations, local_explanations):
        assert [i.example_id for i in on_cluster.proponents] == [i.example_id for i in here.proponents]
        assert [i.score for i in on_cluster.opponents] == pytest.approx([i.score for i in here.opponents], rel=1e-4)
    # The adapter saved in the job's actor reached the coordinator's job folder, file for file.
    ray_adapter, local_adapter = (next((tmp_path / run).rglob("result/adapter")) for run in ("ray", "local"))
    assert sorted(p.name for p in ray_adapter.iterdir()) == sorted(p.name for p in local_adapter.iterdir())
    assert (ray_adapter / "adapter_model.safetensors").stat().st_size > 0
    assert ray_report["rounds"][0]["flagged_ids"] == local_report["rounds"][0]["flagged_ids"]
    assert len(ray_report["rounds"][0]["flagged_ids"]) == 4
    assert ray_report["rounds"][0]["val_accuracy"] == local_report["rounds"][0]["val_accuracy"]
    # The checkpoints went through the cluster's storage, where the Serve replicas read them, and were
    # removed from it once each round was recorded: the job folder keeps them.
    assert (tmp_path / "storage").is_dir()
    assert not list((tmp_path / "storage").rglob("pet_state.safetensors"))
    assert list((tmp_path / "ray").rglob("round-1.pt"))
