"""What a review app reads and does through the gRPC API, on a live coordinator with a real Redis: suspects
with the round's probabilities, suggested and original labels, in an order and filtered; explanations
against the trusted validation set; and a rerun on a reviewed training set."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from gbair.client import GbairClient
from gbair.coordinator.local import LocalCoordinator
from gbair.v1 import gbair_pb2 as pb
from job_waits import endless_job, wait_for_status
from labeled_files import rows, write_dataset_files
from test_service import TOKEN_A, TOKEN_A_READ, coordinator_settings

LABELS = ["neg", "pos"]
TRUSTED = {row["id"]: row["label"] for row in rows("v", 16)}
UPLOADED = {row["id"]: row["label"] for row in rows("t", 40)}


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory, redis_url, tiny_model_dir):
    folder = tmp_path_factory.mktemp("review-api")
    with LocalCoordinator(folder / "state", coordinator_settings(redis_url, tiny_model_dir)) as running:
        yield running


@pytest.fixture(scope="module")
def client(coordinator):
    with GbairClient(coordinator.target, TOKEN_A) as client:
        yield client


@pytest.fixture(scope="module")
def dataset(client, tmp_path_factory):
    files = write_dataset_files(tmp_path_factory.mktemp("review-api-data"))
    return client.upload_dataset("reviews", files["train"], files["validation"], files["test"])


def _run(client, spec: pb.JobSpec, request_id: str) -> pb.Job:
    job = client.submit(spec, request_id=request_id)
    list(client.watch(job.job_id))
    job = client.get_job(job.job_id)
    assert job.status == pb.SUCCEEDED, job.error
    return job


@pytest.fixture(scope="module")
def removed(client, dataset):
    """A remove job of two cleaning rounds on partly corrupted labels, one training a round: its explanations'
    predictions score that training's validation accuracy."""
    spec = pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.25, seed=1, round_trainings=1)
    return _run(client, spec, "remove-1")


def _page(client, job_id: str, **fields) -> pb.ListSuspectsResponse:
    return client.stub.ListSuspects(pb.ListSuspectsRequest(job_id=job_id, **fields), metadata=client.metadata)


def _status_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value


def test_suspects_carry_probabilities_suggestions_and_labels(client, removed):
    report = json.loads(removed.report_json)
    corrupted = set(report["corrupted_ids"])
    page = _page(client, removed.job_id, page_size=1000)
    assert list(page.label_names) == LABELS and page.total == sum(len(r["flagged_ids"]) for r in report["rounds"]) > 0
    for suspect in page.suspects:
        assert len(suspect.probabilities) == 2 and sum(suspect.probabilities) == pytest.approx(1, abs=1e-5)
        assert all(0 <= p <= 1 for p in suspect.probabilities)
        # A remove job suggests the other label; with two labels there is one.
        assert suspect.suggested_label in LABELS and suspect.suggested_label != suspect.given_label
        # The label in force is the corrupted one where the job corrupted it; nothing relabelled it.
        flipped = suspect.example_id in corrupted
        assert (suspect.given_label != UPLOADED[suspect.example_id]) == flipped
        assert suspect.original_label == suspect.given_label
    reported = {i: p for r in report["rounds"] for i, p in zip(r["flagged_ids"], r["flagged_probabilities"])}
    assert {s.example_id: list(s.probabilities) for s in page.suspects} == reported


def test_suspects_in_score_order_filtered_and_paged(client, removed):
    everything = list(client.suspects(removed.job_id))
    scores = [s.score for s in everything]
    descending = list(client.suspects(removed.job_id, order=pb.SCORE_DESCENDING))
    assert [s.score for s in descending] == sorted(scores, reverse=True)
    assert [s.score for s in client.suspects(removed.job_id, order=pb.SCORE_ASCENDING)] == sorted(scores)

    second_round = [s.example_id for s in everything if s.round == 1]
    assert second_round and len(second_round) < len(everything)
    page = _page(client, removed.job_id, round=1)
    assert [s.example_id for s in page.suspects] == second_round and page.total == len(second_round)
    assert _page(client, removed.job_id, round=7).total == 0
    positive = [s.example_id for s in everything if s.given_label == "pos"]
    assert [s.example_id for s in client.suspects(removed.job_id, given_label="pos")] == positive

    # Pages of a filtered, ordered list: offsets into it, each page answering the filtered total.
    pages, token = [], ""
    while True:
        page = _page(client, removed.job_id, page_size=1, page_token=token, order=pb.SCORE_DESCENDING, given_label="pos")
        assert page.total == len(positive)
        pages.extend(s.example_id for s in page.suspects)
        token = page.next_page_token
        if not token:
            break
    assert pages == [s.example_id for s in descending if s.given_label == "pos"]


def test_suspects_filtered_by_decision(client, removed):
    everything = [s.example_id for s in client.suspects(removed.job_id)]
    rejected, relabelled = everything[0], everything[-1]
    client.review(removed.job_id, [pb.ReviewDecision(example_id=rejected, decision=pb.REJECT),
                                   pb.ReviewDecision(example_id=relabelled, decision=pb.SET_LABEL, label="pos")])
    assert [s.example_id for s in client.suspects(removed.job_id, decision=pb.REJECT)] == [rejected]
    assert [s.example_id for s in client.suspects(removed.job_id, decision=pb.SET_LABEL)] == [relabelled]
    assert list(client.suspects(removed.job_id, decision=pb.ACCEPT)) == []
    undecided = [s.example_id for s in client.suspects(removed.job_id, decision=pb.DECISION_UNSPECIFIED)]
    assert undecided == [i for i in everything if i not in (rejected, relabelled)]


@pytest.mark.parametrize(("fields", "field"), [
    ({"round": -1}, "round"),
    ({"given_label": "maybe"}, "given_label"),
    ({"order": 7}, "order"),
    ({"decision": 9}, "decision"),
])
def test_bad_suspect_filters_are_invalid_arguments(client, removed, fields, field):
    error = _status_of(lambda: _page(client, removed.job_id, **fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and field in error.details()


def test_explain_against_the_trusted_set(client, removed):
    suspect = next(iter(client.suspects(removed.job_id, round=0)))
    explanation = client.explain(removed.job_id, suspect.example_id, top=16, round=0, against=pb.VALIDATION)
    ranked = [*explanation.proponents, *reversed(explanation.opponents)]
    assert explanation.round == 0 and [i.score for i in ranked] == sorted((i.score for i in ranked), reverse=True)
    assert all(i.score > 0 for i in explanation.proponents) and all(i.score < 0 for i in explanation.opponents)
    # Top 16 of each side covers the whole trusted set (no score is exactly 0).
    assert sorted(i.example_id for i in ranked) == sorted(TRUSTED)
    assert all(i.label == TRUSTED[i.example_id] and i.text for i in ranked)
    # The predictions are the round's model's: they score its validation accuracy.
    correct = sum(i.predicted_label == i.label for i in ranked)
    assert correct / 16 == pytest.approx(removed.rounds[0].val_accuracy)

    # TracIn is symmetric: the trusted example's own explanation scores the suspect the same.
    helped = explanation.proponents[0]
    back = client.explain(removed.job_id, helped.example_id, top=40, round=0)
    (same,) = [i for i in back.proponents if i.example_id == suspect.example_id]
    assert same.score == pytest.approx(helped.score, rel=1e-3)
    assert same.label == suspect.given_label and same.predicted_label in LABELS
    assert all(i.example_id.startswith("t") and i.predicted_label in LABELS for i in [*back.proponents, *back.opponents])

    error = _status_of(lambda: client.explain(removed.job_id, suspect.example_id, against=pb.TEST))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "against" in error.details()


def test_explanations_carry_the_second_text_of_pairs(client, tmp_path):
    def write(name: str, records: list[dict]) -> Path:
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({**r, "pair": f"pair of {r['id']}"}) + "\n" for r in records))
        return path

    dataset = client.upload_dataset("pairs", write("train", rows("t", 24)), write("validation", rows("v", 8)),
                                    columns=pb.ColumnNames(text_pair="pair"))
    job = _run(client, pb.JobSpec(dataset_id=dataset.dataset_id, rounds=0, epochs=1), "pairs-1")
    for against in (pb.TRAIN, pb.VALIDATION):
        explanation = client.explain(job.job_id, "t3", top=3, against=against)
        influences = [*explanation.proponents, *explanation.opponents]
        assert influences and all(i.text_pair == f"pair of {i.example_id}" for i in influences)


# --- rerun ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reviewed(client, dataset):
    """A job flagging 36 of 40 examples in round 0 (training dynamics, which need no validation errors),
    each then given the other label by review."""
    job = _run(client, pb.JobSpec(dataset_id=dataset.dataset_id, method="aum", budget=0.9, rounds=1, seed=2), "aum-1")
    flagged = [s for s in client.suspects(job.job_id) if s.round == 0]
    assert len(flagged) == 36
    flips = {s.example_id: next(n for n in LABELS if n != s.given_label) for s in flagged}
    client.review(job.job_id, [pb.ReviewDecision(example_id=i, decision=pb.SET_LABEL, label=n) for i, n in flips.items()])
    return job, flips


@pytest.fixture(scope="module")
def rerun(client, reviewed):
    parent, _ = reviewed
    child = client.rerun_with_decisions(parent.job_id, request_id="rerun-1")
    list(client.watch(child.job_id))
    return client.get_job(child.job_id)


def test_rerun_runs_the_parents_spec_on_the_reviewed_training_set(coordinator, client, dataset, reviewed, rerun, tmp_path):
    parent, flips = reviewed
    assert rerun.status == pb.SUCCEEDED, rerun.error
    assert rerun.parent_job_id == parent.job_id and parent.parent_job_id == ""
    new_dataset_id = rerun.spec.dataset_id
    assert new_dataset_id != dataset.dataset_id
    expected_spec = pb.JobSpec()
    expected_spec.CopyFrom(parent.spec)
    expected_spec.dataset_id = new_dataset_id
    assert rerun.spec == expected_spec

    (new,) = [d for d in client.list_datasets() if d.dataset_id == new_dataset_id]
    assert (new.train_size, new.validation_size, new.test_size) == (40, 16, 8) and list(new.label_names) == LABELS
    (cleaned,) = client.export_cleaned(parent.job_id, tmp_path / "cleaned")
    folder = coordinator.state_dir / "datasets" / "a" / new_dataset_id
    with cleaned.open() as exported, (folder / "train.csv").open() as stored:
        assert list(csv.DictReader(stored)) == list(csv.DictReader(exported))
    assert {row["id"]: row["label"] for row in csv.DictReader(cleaned.open())} == UPLOADED | flips
    original = coordinator.state_dir / "datasets" / "a" / dataset.dataset_id
    for split in ("validation", "test"):
        assert (folder / f"{split}.csv").read_bytes() == (original / f"{split}.csv").read_bytes()


def test_the_rerun_shows_the_labels_before_the_review(client, reviewed, rerun):
    _, flips = reviewed
    suspects = list(client.suspects(rerun.job_id))
    assert len(suspects) == 36
    changed = [s for s in suspects if s.example_id in flips]
    # 36 of the 40 rows were relabelled, so most of the rerun's suspects were.
    assert len(changed) >= 32
    for suspect in suspects:
        assert suspect.given_label == flips.get(suspect.example_id, UPLOADED[suspect.example_id])
        assert suspect.original_label == UPLOADED[suspect.example_id]


def test_rerun_is_idempotent_by_request_id(client, removed, reviewed, rerun):
    parent, _ = reviewed
    datasets = [d.dataset_id for d in client.list_datasets()]
    again = client.rerun_with_decisions(parent.job_id, request_id="rerun-1")
    assert again.job_id == rerun.job_id and again.spec.dataset_id == rerun.spec.dataset_id
    assert [d.dataset_id for d in client.list_datasets()] == datasets
    # A request id another call used is refused, and makes nothing either.
    error = _status_of(lambda: client.rerun_with_decisions(parent.job_id, request_id=removed.request_id))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "request_id" in error.details()
    assert [d.dataset_id for d in client.list_datasets()] == datasets


def test_concurrent_reruns_with_one_request_id_make_one_job_and_one_data_set(coordinator, client, reviewed):
    """Past the API's heavy-call thread, as two coordinators would: both build a data set, one records it
    with its job, the other finds that job and removes its own files."""
    from concurrent.futures import ThreadPoolExecutor

    from gbair.coordinator.rerun import rerun_with_decisions
    from gbair.coordinator.settings import CoordinatorSettings
    from gbair.coordinator.store import Store

    parent, _ = reviewed
    settings = CoordinatorSettings.model_validate(coordinator.settings)
    store = Store.connect(settings.redis_url, settings.redis_prefix)
    record = store.job("a", parent.job_id)
    before = {d.dataset_id for d in client.list_datasets()}
    with ThreadPoolExecutor(2) as threads:
        jobs = list(threads.map(lambda _: rerun_with_decisions(store, settings, record, "raced-1"), range(2)))
    store.redis.close()
    assert jobs[0].job_id == jobs[1].job_id and jobs[0].parent_job_id == parent.job_id
    added = {d.dataset_id for d in client.list_datasets()} - before
    assert added == {jobs[0].spec.dataset_id}
    folders = {p.name for p in (coordinator.state_dir / "datasets" / "a").iterdir()}
    assert folders == before | added
    client.cancel(jobs[0].job_id)


def test_rerun_needs_a_write_token_and_a_job_that_succeeded(coordinator, client, dataset, reviewed):
    parent, _ = reviewed
    with GbairClient(coordinator.target, TOKEN_A_READ) as reader:
        error = _status_of(lambda: reader.rerun_with_decisions(parent.job_id))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    running = client.submit(endless_job(dataset.dataset_id))
    wait_for_status(client, running.job_id, pb.RUNNING)
    datasets = [d.dataset_id for d in client.list_datasets()]
    error = _status_of(lambda: client.rerun_with_decisions(running.job_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "succeeded" in error.details()
    client.cancel(running.job_id)
    error = _status_of(lambda: client.rerun_with_decisions(running.job_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert [d.dataset_id for d in client.list_datasets()] == datasets


def test_rerun_and_suspects_on_the_command_line(coordinator, reviewed, rerun):
    parent, flips = reviewed
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GBAIR_")}
    connection = ["--target", coordinator.target, "--token", TOKEN_A]

    def cli(*arguments) -> str:
        done = subprocess.run([sys.executable, "-m", "gbair.cli", *arguments, *connection],
                              capture_output=True, text=True, env=environment, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert cli("rerun", parent.job_id, "--request-id", "rerun-1").strip() == rerun.job_id
    table = cli("suspects", rerun.job_id, "--limit", "100")
    lines = {line.split("│")[3].strip(): line for line in table.splitlines() if line.count("│") > 4}
    relabelled = next(i for i in flips if i in lines)
    assert f"{flips[relabelled]} (was {UPLOADED[relabelled]})" in lines[relabelled]
    assert "model says" in table
