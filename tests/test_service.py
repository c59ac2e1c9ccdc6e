"""The coordinator as a user meets it: a `gbair serve` process on loopback with a real Redis server,
called through the real gRPC API with the Python client. One job runs the whole flow on a tiny model;
bad input is answered with the right status while the server keeps serving and keeps its data."""

from __future__ import annotations

import csv
import json
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator
from gbair.core.model import PetClassifier
from gbair.v1 import gbair_pb2 as pb
from gbair.v1 import gbair_pb2_grpc
from job_waits import endless_job, wait_for_status
from labeled_files import write_dataset_files

TOKEN_A = "token-tenant-a-0123456789"
TOKEN_B = "token-tenant-b-0123456789"
TOKEN_A_READ = "token-tenant-a-read-0123"
KiB = 1024


def coordinator_settings(redis_url: str, model_dir, **overrides) -> dict:
    return {
        "redis_url": redis_url,
        "redis_prefix": f"test-{uuid.uuid4().hex[:8]}",
        "tokens": [
            {"token": TOKEN_A, "tenant": "a"},
            {"token": TOKEN_B, "tenant": "b"},
            {"token": TOKEN_A_READ, "tenant": "a", "read_only": True},
        ],
        "models": [str(model_dir)],
        # Rounds run in the coordinator's process here; tests/on_ray/test_service_on_ray.py runs them on Ray.
        "backend": "local",
        "torch_threads": 1,
        "max_request_bytes": 64 * KiB,
        "max_upload_bytes": 160 * KiB,
        "max_queued_jobs": 3,
        "job_defaults": {
            "model": {"num_virtual_tokens": 4, "max_length": 32},
            "train": {"epochs": 2, "batch_size": 8, "learning_rate": 0.03},
            "recovery": {"rounds": 2, "budget": 4, "patience": 5},
        },
        **overrides,
    }


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory, redis_url, tiny_model_dir):
    folder = tmp_path_factory.mktemp("coordinator")
    with LocalCoordinator(folder / "state", coordinator_settings(redis_url, tiny_model_dir)) as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_dataset_files(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def client(coordinator):
    with GbairClient(coordinator.target, TOKEN_A) as client:
        yield client


@pytest.fixture(scope="module")
def finished(client, files):
    """One job run to the end: the data set, the job, and every event WatchJob sent."""
    dataset = client.upload_dataset("reviews", files["train"], files["validation"], files["test"])
    spec = pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.25, seed=1, round_trainings=2)
    job = client.submit(spec, request_id="flow-1")
    events = list(client.watch(job.job_id))
    return dataset, client.get_job(job.job_id), events


def test_upload_is_validated_and_counted(finished):
    dataset, _, _ = finished
    assert (dataset.train_size, dataset.validation_size, dataset.test_size) == (40, 16, 8)
    assert list(dataset.label_names) == ["neg", "pos"] and dataset.format == pb.CSV


def test_job_runs_every_round_and_reports_in_the_core_schema(client, finished):
    _, job, events = finished
    assert job.status == pb.SUCCEEDED, job.error
    report = json.loads(job.report_json)
    assert [r["round"] for r in report["rounds"]] == [r.round for r in job.rounds] == [0, 1, 2]
    assert [r["train_size"] for r in report["rounds"]] == [40, 36, 32]
    assert [pytest.approx(r["val_loss"]) for r in report["rounds"]] == [r.val_loss for r in job.rounds]
    assert all(r.HasField("val_loss") and r.val_loss > 0 for r in job.rounds)
    assert not job.rounds[0].HasField("val_change_p_value")
    # Two trainings of each round's data: the round's validation accuracy is their mean.
    assert report["config"]["recovery"]["round_trainings"] == job.spec.round_trainings == 2
    for row, metrics in zip(report["rounds"], job.rounds, strict=True):
        assert list(metrics.val_accuracies) == pytest.approx(row["val_accuracies"]) and len(row["val_accuracies"]) == 2
        assert metrics.val_accuracy == pytest.approx(sum(row["val_accuracies"]) / 2)
        assert metrics.model_training == row["model_training"]
        assert list(metrics.test_accuracies) == pytest.approx(row["test_accuracies"] or [])
    assert [pytest.approx(r["val_change_p_value"]) for r in report["rounds"][1:]] == [
        r.val_change_p_value for r in job.rounds[1:]
    ]
    assert len(report["corrupted_ids"]) == 10 and report["best_round"] == job.best_round
    phases = [e.phase for e in events]
    assert phases[0] == "queued" and phases[-1] == "succeeded"
    assert {"train", "evaluate", "influence"} <= set(phases)
    assert [e.metrics.round for e in events if e.phase == "round"] == [0, 1, 2]
    assert all(0 <= e.fraction <= 1 for e in events)
    # Watching a finished job replays its events and ends.
    assert [e.phase for e in client.watch(job.job_id)] == phases


def test_submit_is_idempotent_by_request_id(client, finished):
    dataset, job, _ = finished
    again = client.submit(job.spec, request_id="flow-1")
    assert again.job_id == job.job_id
    assert [j.job_id for j in client.list_jobs()].count(job.job_id) == 1


def test_suspects_page_review_and_export(client, finished, tmp_path):
    _, job, _ = finished
    report = json.loads(job.report_json)
    flagged = [(r["round"], i) for r in report["rounds"] for i in r["flagged_ids"]]
    pages, token = [], ""
    while True:
        page = client.stub.ListSuspects(pb.ListSuspectsRequest(job_id=job.job_id, page_size=3, page_token=token),
                                        metadata=client.metadata)
        pages.append(page)
        token = page.next_page_token
        if not token:
            break
    suspects = [s for page in pages for s in page.suspects]
    assert [(s.round, s.example_id) for s in suspects] == flagged and pages[0].total == len(flagged)
    assert all(s.text and s.given_label in ("neg", "pos") for s in suspects)

    removed_before_best = [i for r in report["rounds"][: job.best_round] for i in r["flagged_ids"]]
    kept_by_review = suspects[0].example_id
    relabeled = suspects[-1].example_id
    decisions = [pb.ReviewDecision(example_id=kept_by_review, decision=pb.REJECT),
                 pb.ReviewDecision(example_id=relabeled, decision=pb.SET_LABEL, label="pos")]
    assert client.review(job.job_id, decisions) == 2
    reviewed = {s.example_id: s for s in client.suspects(job.job_id)}
    assert reviewed[kept_by_review].decision == pb.REJECT and reviewed[relabeled].decided_label == "pos"

    (cleaned,) = client.export_cleaned(job.job_id, tmp_path / "cleaned")
    rows = {row["id"]: row["label"] for row in csv.DictReader(cleaned.open())}
    expected_removed = set(removed_before_best) - {kept_by_review, relabeled}
    assert set(rows) == {f"t{i}" for i in range(40)} - expected_removed
    assert rows[relabeled] == "pos"

    adapter_files = client.export_adapter(job.job_id, tmp_path / "adapter")
    assert any(p.name == "gbair_classifier.json" for p in adapter_files)
    assert PetClassifier.load_adapter(tmp_path / "adapter").label_names == ["neg", "pos"]


def test_explain_names_training_examples_of_the_round(client, finished):
    _, job, _ = finished
    explanation = client.explain(job.job_id, "v3", top=3, round=0)
    assert explanation.round == 0 and 0 < len(explanation.proponents) + len(explanation.opponents) <= 6
    helping, hurting = [i.score for i in explanation.proponents], [i.score for i in explanation.opponents]
    assert helping == sorted(helping, reverse=True) and all(s > 0 for s in helping)
    assert hurting == sorted(hurting) and all(s < 0 for s in hurting)
    assert all(i.example_id.startswith("t") and i.label in ("neg", "pos") and i.text for i in explanation.proponents)


def test_tenants_see_only_their_own_jobs_and_data(coordinator, finished):
    dataset, job, _ = finished
    with GbairClient(coordinator.target, TOKEN_B) as other:
        assert other.list_jobs() == [] and other.list_datasets() == []
        for call in (lambda: other.get_job(job.job_id), lambda: list(other.suspects(job.job_id)),
                     lambda: other.submit(pb.JobSpec(dataset_id=dataset.dataset_id))):
            with pytest.raises(grpc.RpcError) as error:
                call()
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with GbairClient(coordinator.target, TOKEN_A_READ) as reader:
        assert reader.get_job(job.job_id).job_id == job.job_id
        with pytest.raises(grpc.RpcError) as error:
            reader.cancel(job.job_id)
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_health_and_reflection_need_no_token(coordinator):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(coordinator.target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="gbair.v1.Gbair"))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        answers = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for answer in answers for s in answer.list_services_response.service}
    assert {"gbair.v1.Gbair", "grpc.health.v1.Health"} <= names


# --- bad input -----------------------------------------------------------------------------------------
# Each case: (name, expected status, a word its message must contain, the call). Cases:
#  1 no token                          UNAUTHENTICATED
#  2 unknown token                     UNAUTHENTICATED
#  3 "Basic" instead of "Bearer"       UNAUTHENTICATED
#  4 read-only token uploads           PERMISSION_DENIED
#  5 unknown job id                    NOT_FOUND
#  6 empty job id                      INVALID_ARGUMENT job_id
#  7 submit without request id         INVALID_ARGUMENT request_id
#  8 submit on an unknown data set     NOT_FOUND
#  9 rounds out of range               INVALID_ARGUMENT spec.rounds
# 10 unknown scoring method            INVALID_ARGUMENT spec.method
# 11 fractional count budget           INVALID_ARGUMENT spec.budget
# 12 a model the server does not offer INVALID_ARGUMENT spec.model
# 13 corrupt fraction >= 1             INVALID_ARGUMENT spec.corrupt
# 14 request id reused, other spec     INVALID_ARGUMENT request_id
# 15 upload starting with a chunk      INVALID_ARGUMENT info
# 16 upload with info twice            INVALID_ARGUMENT info
# 17 upload without training data      INVALID_ARGUMENT TRAIN
# 18 upload missing the label column   INVALID_ARGUMENT label
# 19 upload with bytes not UTF-8       INVALID_ARGUMENT UTF-8
# 20 upload with a bad name            INVALID_ARGUMENT info.name
# 21 upload larger than the limit      RESOURCE_EXHAUSTED
# 22 one message larger than the limit RESOURCE_EXHAUSTED
# 23 page size 0 < x, > 1000           INVALID_ARGUMENT page_size
# 24 a page token never given out      INVALID_ARGUMENT page_token
# 25 review of an id never flagged     INVALID_ARGUMENT example_id
# 26 review with an unknown label      INVALID_ARGUMENT label
# 27 review without a decision         INVALID_ARGUMENT decision
# 28 explain an unknown example        NOT_FOUND
# 29 explain a round the job never ran INVALID_ARGUMENT round
# 30 cancel a finished job             FAILED_PRECONDITION
# 31 train size larger than the data   INVALID_ARGUMENT


def _upload(stub, metadata, *requests):
    return stub.UploadDataset(iter(requests), metadata=metadata, timeout=30)


def _info(name="bad", format=pb.CSV):
    return pb.UploadDatasetRequest(info=pb.DatasetInfo(name=name, format=format))


def _chunk(data: bytes, split=pb.TRAIN):
    return pb.UploadDatasetRequest(chunk=pb.DataChunk(split=split, data=data))


def _bad_cases(dataset_id: str, job_id: str):
    a = (("authorization", f"Bearer {TOKEN_A}"),)
    spec = lambda **fields: pb.SubmitJobRequest(request_id=uuid.uuid4().hex, spec=pb.JobSpec(dataset_id=dataset_id, **fields))  # noqa: E731
    good_csv = b"id,text,label\nq1,fine film,pos\nq2,bad film,neg\nq3,good,pos\nq4,poor,neg\n"
    S = grpc.StatusCode
    return [
        ("no token", S.UNAUTHENTICATED, "authorization", lambda s: s.ListJobs(pb.ListJobsRequest())),
        ("unknown token", S.UNAUTHENTICATED, "unknown", lambda s: s.ListJobs(pb.ListJobsRequest(), metadata=(("authorization", "Bearer nope-nope-nope-nope"),))),
        ("basic scheme", S.UNAUTHENTICATED, "Bearer", lambda s: s.ListJobs(pb.ListJobsRequest(), metadata=(("authorization", f"Basic {TOKEN_A}"),))),
        ("read-only upload", S.PERMISSION_DENIED, "read-only", lambda s: _upload(s, (("authorization", f"Bearer {TOKEN_A_READ}"),), _info(), _chunk(good_csv))),
        ("unknown job", S.NOT_FOUND, "no job", lambda s: s.GetJob(pb.GetJobRequest(job_id="nope"), metadata=a)),
        ("empty job id", S.INVALID_ARGUMENT, "job_id", lambda s: s.GetJob(pb.GetJobRequest(), metadata=a)),
        ("no request id", S.INVALID_ARGUMENT, "request_id", lambda s: s.SubmitJob(pb.SubmitJobRequest(spec=pb.JobSpec(dataset_id=dataset_id)), metadata=a)),
        ("unknown data set", S.NOT_FOUND, "data set", lambda s: s.SubmitJob(pb.SubmitJobRequest(request_id="x1", spec=pb.JobSpec(dataset_id="nope")), metadata=a)),
        ("rounds too many", S.INVALID_ARGUMENT, "spec.rounds", lambda s: s.SubmitJob(spec(rounds=1000), metadata=a)),
        ("unknown method", S.INVALID_ARGUMENT, "spec.method", lambda s: s.SubmitJob(spec(method="magic"), metadata=a)),
        ("fractional budget", S.INVALID_ARGUMENT, "spec.budget", lambda s: s.SubmitJob(spec(budget=2.5), metadata=a)),
        ("model not offered", S.INVALID_ARGUMENT, "spec.model", lambda s: s.SubmitJob(spec(model="/etc"), metadata=a)),
        ("corrupt all", S.INVALID_ARGUMENT, "spec.corrupt", lambda s: s.SubmitJob(spec(corrupt=1.5), metadata=a)),
        ("request id reused", S.INVALID_ARGUMENT, "request_id", lambda s: s.SubmitJob(pb.SubmitJobRequest(request_id="flow-1", spec=pb.JobSpec(dataset_id=dataset_id, rounds=1)), metadata=a)),
        ("chunk first", S.INVALID_ARGUMENT, "info", lambda s: _upload(s, a, _chunk(good_csv), _info())),
        ("info twice", S.INVALID_ARGUMENT, "info", lambda s: _upload(s, a, _info(), _info())),
        ("no train data", S.INVALID_ARGUMENT, "TRAIN", lambda s: _upload(s, a, _info(), _chunk(good_csv, pb.VALIDATION))),
        ("no label column", S.INVALID_ARGUMENT, "label", lambda s: _upload(s, a, _info(), _chunk(b"id,text\nq1,fine\nq2,bad\n"))),
        ("not utf-8", S.INVALID_ARGUMENT, "UTF-8", lambda s: _upload(s, a, _info(), _chunk(b"id,text,label\nq1,\xff\xfe,pos\n"))),
        ("bad name", S.INVALID_ARGUMENT, "info.name", lambda s: _upload(s, a, _info(name="../etc"), _chunk(good_csv))),
        ("upload too large", S.RESOURCE_EXHAUSTED, "limit", lambda s: _upload(s, a, _info(), *[_chunk(b"x" * 60 * KiB)] * 3)),
        ("message too large", S.RESOURCE_EXHAUSTED, "", lambda s: _upload(s, a, _info(), _chunk(b"x" * 100 * KiB))),
        ("page size", S.INVALID_ARGUMENT, "page_size", lambda s: s.ListSuspects(pb.ListSuspectsRequest(job_id=job_id, page_size=5000), metadata=a)),
        ("page token", S.INVALID_ARGUMENT, "page_token", lambda s: s.ListSuspects(pb.ListSuspectsRequest(job_id=job_id, page_token="abc"), metadata=a)),
        ("review unknown id", S.INVALID_ARGUMENT, "example_id", lambda s: s.ReviewSuspects(pb.ReviewSuspectsRequest(job_id=job_id, decisions=[pb.ReviewDecision(example_id="v1", decision=pb.ACCEPT)]), metadata=a)),
        ("review unknown label", S.INVALID_ARGUMENT, "label", lambda s: s.ReviewSuspects(pb.ReviewSuspectsRequest(job_id=job_id, decisions=[pb.ReviewDecision(example_id=_first_suspect(s, a, job_id), decision=pb.SET_LABEL, label="maybe")]), metadata=a)),
        ("review no decision", S.INVALID_ARGUMENT, "decision", lambda s: s.ReviewSuspects(pb.ReviewSuspectsRequest(job_id=job_id, decisions=[pb.ReviewDecision(example_id="t1")]), metadata=a)),
        ("explain unknown example", S.NOT_FOUND, "example", lambda s: s.ExplainExample(pb.ExplainExampleRequest(job_id=job_id, example_id="zzz"), metadata=a)),
        ("explain unknown round", S.INVALID_ARGUMENT, "round", lambda s: s.ExplainExample(pb.ExplainExampleRequest(job_id=job_id, example_id="v1", round=9), metadata=a)),
        ("cancel finished", S.FAILED_PRECONDITION, "already", lambda s: s.CancelJob(pb.CancelJobRequest(job_id=job_id), metadata=a)),
        ("train size too large", S.INVALID_ARGUMENT, "", lambda s: s.SubmitJob(spec(train_size=10_000), metadata=a)),
    ]


def _first_suspect(stub, metadata, job_id):
    return stub.ListSuspects(pb.ListSuspectsRequest(job_id=job_id), metadata=metadata).suspects[0].example_id


def _snapshot(client: GbairClient, job_id: str):
    job = client.get_job(job_id)
    return (
        [d.SerializeToString() for d in client.list_datasets()],
        sorted(j.job_id for j in client.list_jobs()),
        job.report_json,
        [(s.example_id, s.decision, s.decided_label) for s in client.suspects(job_id)],
    )


def test_bad_input_gets_the_right_status_and_changes_nothing(coordinator, client, finished):
    dataset, job, _ = finished
    cases = _bad_cases(dataset.dataset_id, job.job_id)
    assert len(cases) >= 20
    before = _snapshot(client, job.job_id)
    with grpc.insecure_channel(coordinator.target) as channel:
        stub = gbair_pb2_grpc.GbairStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        for name, code, word, call in cases:
            with pytest.raises(grpc.RpcError) as error:
                call(stub)
            assert error.value.code() == code, f"{name}: {error.value.code()} {error.value.details()}"
            assert word in (error.value.details() or ""), f"{name}: {error.value.details()}"
            assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
            assert _snapshot(client, job.job_id) == before, name
    # Rejected uploads leave no files behind.
    tenant_folder = coordinator.state_dir / "datasets" / "a"
    assert sorted(p.name for p in tenant_folder.iterdir()) == [d.dataset_id for d in client.list_datasets()]


def test_cancel_a_running_and_a_queued_job(client, finished):
    dataset, _, _ = finished
    long = endless_job(dataset.dataset_id)
    running = client.submit(long)
    queued = client.submit(long)
    wait_for_status(client, running.job_id, pb.RUNNING)
    assert client.get_job(queued.job_id).status == pb.QUEUED
    client.cancel(queued.job_id)
    assert client.get_job(queued.job_id).status == pb.CANCELLED
    client.cancel(running.job_id)
    events = list(client.watch(running.job_id))
    assert events[-1].phase == "cancelled"
    assert client.get_job(running.job_id).status == pb.CANCELLED
