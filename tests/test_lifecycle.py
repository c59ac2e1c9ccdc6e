"""A job's and a data set's life on the coordinator: deleting them (through the API and the CLI), the
per-tenant limits on data sets, paged job lists, ids unique across an upload's files, the removal of
partial uploads at start-up and the retention sweep. A `gbair serve` process with a real Redis, called
through gRPC."""

from __future__ import annotations

import asyncio
import csv
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import redis

from gbair.client import GbairClient
from gbair.coordinator.local import CoordinatorStartError, LocalCoordinator
from gbair.coordinator.retention import sweep
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store
from gbair.v1 import gbair_pb2 as pb
from job_waits import endless_job, wait_for_status
from labeled_files import rows, write_csv, write_dataset_files
from test_service import TOKEN_A, TOKEN_A_READ, TOKEN_B, coordinator_settings

TOKEN_C = "token-tenant-c-0123456789"
TOKEN_D = "token-tenant-d-0123456789"
README = Path(__file__).resolve().parents[1] / "README.md"
# The "reviews" files are 2,210 bytes, a small training file about 300: two of each kind do not fit.
LIMITS = {"max_datasets_per_tenant": 2, "max_dataset_bytes_per_tenant": 3000}


@pytest.fixture(scope="module")
def partial_uploads(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A state folder holding, before the coordinator starts, the partial upload of a killed coordinator
    (untouched for two hours) and one another coordinator may still be writing."""
    state = tmp_path_factory.mktemp("lifecycle") / "state"
    stale = state / "datasets" / "a" / "partial-0123456789abcdef"
    fresh = state / "datasets" / "a" / "partial-fedcba9876543210"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "train.csv").write_bytes(b"id,text,label\n" * 1000)
    two_hours_ago = time.time() - 7200
    for path in (stale / "train.csv", stale):
        os.utime(path, (two_hours_ago, two_hours_ago))
    return state, stale, fresh


@pytest.fixture(scope="module")
def coordinator(partial_uploads, redis_url, tiny_model_dir):
    settings = coordinator_settings(redis_url, tiny_model_dir, **LIMITS)
    settings["tokens"] = [*settings["tokens"], {"token": TOKEN_C, "tenant": "c"}, {"token": TOKEN_D, "tenant": "d"}]
    state, _, _ = partial_uploads
    with LocalCoordinator(state, settings) as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lifecycle-data")
    return {**write_dataset_files(folder), "small": write_csv(folder / "small.csv", rows("s", 8))}


@pytest.fixture(scope="module")
def client(coordinator):
    with GbairClient(coordinator.target, TOKEN_A) as client:
        yield client


@pytest.fixture(scope="module")
def succeeded(client, files):
    """A one-round job run to the end, and its events."""
    dataset = client.upload_dataset("reviews", files["train"], files["validation"], files["test"])
    job = client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, rounds=0, epochs=1))
    events = list(client.watch(job.job_id))
    return client.get_job(job.job_id), events


def _status_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def _cli(coordinator, *arguments) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GBAIR_")}
    command = [sys.executable, "-m", "gbair.cli", *arguments, "--target", coordinator.target, "--token", TOKEN_A]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)



def test_events_use_only_the_phases_the_readme_lists(succeeded):
    job, events = succeeded
    assert job.status == pb.SUCCEEDED, job.error
    (bullet,) = re.findall(r"^- \*\*Job events\*\*.*?(?=^- )", README.read_text(), flags=re.M | re.S)
    documented = set(re.findall(r"`([a-z]+)`", bullet))
    assert {e.phase for e in events} <= documented
    assert {"queued", "started", "train", "trained", "round", "succeeded", "failed", "cancelled", "resumed"} <= documented


def test_a_job_and_its_data_set_are_deleted_only_once_no_job_runs_on_them(coordinator, client, files, succeeded):
    dataset = client.upload_dataset("small", files["small"])
    running = client.submit(endless_job(dataset.dataset_id), request_id="long-1")
    wait_for_status(client, running.job_id, pb.RUNNING)
    error = _status_of(lambda: client.delete_job(running.job_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "cancel it first" in error.details()
    error = _status_of(lambda: client.delete_dataset(dataset.dataset_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and running.job_id in error.details()
    with GbairClient(coordinator.target, TOKEN_A_READ) as reader:
        assert _status_of(lambda: reader.delete_job(running.job_id)).code() == grpc.StatusCode.PERMISSION_DENIED
    with GbairClient(coordinator.target, TOKEN_B) as other:
        assert _status_of(lambda: other.delete_dataset(dataset.dataset_id)).code() == grpc.StatusCode.NOT_FOUND

    cancelled = _cli(coordinator, "cancel", running.job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert list(client.watch(running.job_id))[-1].phase == "cancelled"
    job_folder = coordinator.state_dir / "jobs" / running.job_id
    assert job_folder.is_dir()
    deleted = _cli(coordinator, "delete", "job", running.job_id)
    assert deleted.returncode == 0, deleted.stderr
    assert _status_of(lambda: client.get_job(running.job_id)).code() == grpc.StatusCode.NOT_FOUND
    assert not job_folder.exists()
    store = redis.Redis.from_url(coordinator.settings["redis_url"])
    assert list(store.scan_iter(match=f"{coordinator.settings['redis_prefix']}:*{running.job_id}*")) == []
    assert running.job_id not in [j.job_id for j in client.list_jobs()]
    # Its request id is free again: the same id with another spec is a new job, not an error.
    again = client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, rounds=0, epochs=1), request_id="long-1")
    assert again.job_id != running.job_id
    list(client.watch(again.job_id))

    deleted = _cli(coordinator, "delete", "dataset", dataset.dataset_id)
    assert deleted.returncode == 0, deleted.stderr
    assert dataset.dataset_id not in [d.dataset_id for d in client.list_datasets()]
    assert not (coordinator.state_dir / "datasets" / "a" / dataset.dataset_id).exists()


def test_a_deleted_data_set_ends_explanations_even_of_a_cached_round(client, files):
    # The small file: beside the module's "reviews" upload, a second one of its size would pass the byte limit.
    dataset = client.upload_dataset("explained", files["small"])
    job = client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, rounds=0, epochs=1), request_id="explained")
    list(client.watch(job.job_id))
    assert client.explain(job.job_id, "s1").proponents  # the round's model is cached now
    client.delete_dataset(dataset.dataset_id)
    error = _status_of(lambda: client.explain(job.job_id, "s1"))
    assert error.code() == grpc.StatusCode.NOT_FOUND and dataset.dataset_id in error.details()


def test_list_jobs_is_paged_and_leaves_reports_to_get_job(client, succeeded):
    job, _ = succeeded
    # A second job of its own: the module's other tests may run on another pytest-xdist worker.
    second = client.submit(pb.JobSpec(dataset_id=job.spec.dataset_id, rounds=0, epochs=1), request_id="paging")
    list(client.watch(second.job_id))
    pages, token = [], ""
    while True:
        page = client.stub.ListJobs(pb.ListJobsRequest(page_size=1, page_token=token), metadata=client.metadata)
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    listed = [j for page in pages for j in page.jobs]
    assert len(pages) == pages[0].total == len(listed) >= 2
    assert len({j.job_id for j in listed}) == len(listed) and job.job_id in {j.job_id for j in listed}
    assert all(j.report_json == "" for j in listed) and job.report_json
    assert [j.job_id for j in listed] == [j.job_id for j in client.list_jobs(page_size=2)]
    error = _status_of(lambda: client.stub.ListJobs(pb.ListJobsRequest(page_size=1001), metadata=client.metadata))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in error.details()


def test_a_tenant_past_its_data_set_limits_is_refused_until_it_deletes_one(coordinator, files):
    with GbairClient(coordinator.target, TOKEN_B) as tenant_b:
        tenant_b.upload_dataset("reviews", files["train"], files["validation"], files["test"])
        error = _status_of(lambda: tenant_b.upload_dataset("again", files["train"], files["validation"], files["test"]))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "bytes" in error.details()
        small = tenant_b.upload_dataset("small", files["small"])
        error = _status_of(lambda: tenant_b.upload_dataset("third", files["small"]))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "2 data sets" in error.details()
        tenant_b.delete_dataset(small.dataset_id)
        tenant_b.upload_dataset("third", files["small"])
        kept = sorted(d.dataset_id for d in tenant_b.list_datasets())
    # Refused uploads leave no files.
    assert sorted(p.name for p in (coordinator.state_dir / "datasets" / "b").iterdir()) == kept


def test_an_id_in_two_files_of_an_upload_is_refused_by_name(coordinator, tmp_path):
    train = write_csv(tmp_path / "train.csv", rows("t", 8))
    validation = write_csv(tmp_path / "validation.csv", rows("v", 3) + rows("t", 6)[5:])
    with GbairClient(coordinator.target, TOKEN_C) as tenant_c:
        error = _status_of(lambda: tenant_c.upload_dataset("clash", train, validation))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "'t5'" in error.details()
        assert tenant_c.list_datasets() == []
    assert list((coordinator.state_dir / "datasets" / "c").iterdir()) == []


def test_a_learning_rate_that_is_not_a_number_is_called_so(client, succeeded):
    job, _ = succeeded
    spec = pb.JobSpec(dataset_id=job.spec.dataset_id, learning_rate=math.nan)
    error = _status_of(lambda: client.submit(spec))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.learning_rate" in error.details() and "finite number" in error.details()


def test_start_up_removes_partial_uploads_left_by_a_killed_coordinator(coordinator, partial_uploads):
    _, stale, fresh = partial_uploads
    assert not stale.exists()
    assert fresh.is_dir()  # younger than partial_upload_max_age_s: it may be an upload in progress


def test_the_retention_sweep_removes_ended_jobs_folders_then_their_records(coordinator, client, succeeded):
    job, _ = succeeded
    # The job ended over job_retention_s ago: updated_at keeps whole seconds, so a second more makes sure.
    time.sleep(2.1)
    settings = CoordinatorSettings.model_validate(
        {**coordinator.settings, "tokens": [], "job_retention_s": 1, "retention_deletes_records": False}
    )
    store = Store.connect(settings.redis_url, settings.redis_prefix)
    sweep(store, settings)
    assert not (coordinator.state_dir / "jobs" / job.job_id).exists()
    kept = client.get_job(job.job_id)
    assert kept.status == pb.SUCCEEDED and kept.report_json == job.report_json
    for call in (lambda: client.export_adapter(job.job_id, coordinator.state_dir / "export"),
                 lambda: client.explain(job.job_id, "v1")):
        error = _status_of(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "job_retention_s" in error.details()

    sweep(store, settings.model_copy(update={"retention_deletes_records": True}))
    assert _status_of(lambda: client.get_job(job.job_id)).code() == grpc.StatusCode.NOT_FOUND


def test_a_rerun_keeps_a_carved_validation_set_and_counts_against_the_data_set_limits(coordinator, files, tmp_path):
    with GbairClient(coordinator.target, TOKEN_D) as tenant_d:
        small = tenant_d.upload_dataset("small", files["small"])  # no validation file: one row is carved out
        parent = tenant_d.submit(pb.JobSpec(dataset_id=small.dataset_id, rounds=0, epochs=1))
        list(tenant_d.watch(parent.job_id))
        child = tenant_d.rerun_with_decisions(parent.job_id)
        (new,) = [d for d in tenant_d.list_datasets() if d.dataset_id == child.spec.dataset_id]
        assert (new.train_size, new.validation_size) == (small.train_size, small.validation_size) == (7, 1)
        folder = coordinator.state_dir / "datasets" / "d" / new.dataset_id
        (cleaned,) = tenant_d.export_cleaned(parent.job_id, tmp_path / "cleaned")
        assert (folder / "train.csv").read_text() == cleaned.read_text()
        carved = [row["id"] for row in csv.DictReader((folder / "validation.csv").open())]
        trained = [row["id"] for row in csv.DictReader(cleaned.open())]
        assert sorted(carved + trained) == sorted(row["id"] for row in rows("s", 8))
        # The new data set made two, this server's limit: a second rerun is refused and leaves no files.
        error = _status_of(lambda: tenant_d.rerun_with_decisions(parent.job_id))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "2 data sets" in error.details()
        assert sorted(p.name for p in folder.parent.iterdir()) == sorted(d.dataset_id for d in tenant_d.list_datasets())
        list(tenant_d.watch(child.job_id))
        assert tenant_d.get_job(child.job_id).status == pb.SUCCEEDED


def test_a_start_up_that_fails_after_redis_stops_the_embedded_redis(tmp_path, monkeypatch):
    """A Ray cluster that does not start (here: a Backends that raises) must not leave behind the
    redis-server the coordinator started for itself."""
    from gbair.coordinator import server

    class ClusterDidNotStart(RuntimeError):
        pass

    def failing_backends(settings):
        raise ClusterDidNotStart("no Ray node")

    monkeypatch.setattr(server, "Backends", failing_backends)
    settings = CoordinatorSettings(tokens=[{"token": TOKEN_A, "tenant": "a"}], state_dir=tmp_path, listen="127.0.0.1:0")
    with pytest.raises(ClusterDidNotStart):
        asyncio.run(server.serve(settings))
    socket_path = tmp_path / "redis" / "redis.sock"
    assert (tmp_path / "redis" / "redis.log").exists()  # it did start
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping()


def test_a_coordinator_that_cannot_start_says_why(tmp_path):
    coordinator = LocalCoordinator(tmp_path / "state", {"max_request_bytes": 1})
    # The config file is checked when `gbair serve` loads it, so the error is the log's last line.
    with pytest.raises(CoordinatorStartError, match=r"exited with \d+ \(.*max_request_bytes"):
        coordinator.start()
