"""Load isolation in the coordinator, on loopback with a real Redis server: per-tenant caps on WatchJob
streams and on heavy calls, one Redis reader per watched job however many streams watch it, and the
explain path that builds a round's model and training gradients once."""

from __future__ import annotations

import time

import grpc
import pytest
import redis

from gbair.client import GbairClient
from gbair.coordinator import results
from gbair.coordinator.local import LocalCoordinator
from gbair.coordinator.round_models import RoundModels, load_round_model
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store
from gbair.v1 import gbair_pb2 as pb
from job_waits import endless_job, wait_for_status
from labeled_files import write_dataset_files
from test_service import TOKEN_A, TOKEN_A_READ, TOKEN_B, coordinator_settings

STREAMS_PER_TENANT = 3


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory, redis_url, tiny_model_dir):
    settings = coordinator_settings(
        redis_url, tiny_model_dir, max_watch_streams_per_tenant=STREAMS_PER_TENANT, max_heavy_calls_per_tenant=1,
        max_queued_jobs=5,
    )
    settings["job_defaults"]["recovery"]["rounds"] = 1
    settings["job_defaults"]["train"]["epochs"] = 1
    with LocalCoordinator(tmp_path_factory.mktemp("coordinator") / "state", settings) as running:
        yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_dataset_files(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def finished(coordinator, files):
    """A job of tenant a run to the end (rounds 0 and 1), and its data set."""
    with GbairClient(coordinator.target, TOKEN_A) as client:
        dataset = client.upload_dataset("reviews", files["train"], files["validation"], files["test"])
        job = client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, corrupt=0.25, seed=1))
        events = list(client.watch(job.job_id))
        assert events[-1].phase == "succeeded", client.get_job(job.job_id).error
        return dataset, client.get_job(job.job_id)


def test_heavy_calls_over_the_tenant_cap_are_refused_and_answers_repeat(coordinator, finished):
    _, job = finished
    request = pb.ExplainExampleRequest(job_id=job.job_id, example_id="v3", top=4, round=1)
    with GbairClient(coordinator.target, TOKEN_A_READ) as client:
        # Six at once on a round nobody explained yet: the first builds its model while the rest arrive.
        calls = [client.stub.ExplainExample.future(request, metadata=client.metadata, timeout=120) for _ in range(6)]
        answers, refusals = [], []
        for call in calls:
            try:
                answers.append(call.result())
            except grpc.RpcError as error:
                refusals.append(error)
        assert answers and refusals
        assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refusals)
        assert "max_heavy_calls_per_tenant" in refusals[0].details() and "'a'" in refusals[0].details()
        # Once the slot is free, a read-only token of the same tenant may explain again: the same answer.
        assert all(a == answers[0] for a in answers)
        assert client.explain(job.job_id, "v3", top=4, round=1) == answers[0]
        assert answers[0].round == 1 and len(answers[0].proponents) == 4


def test_a_second_explanation_of_a_round_reuses_its_model_and_gradients(coordinator, finished):
    _, job = finished
    settings = CoordinatorSettings.model_validate(coordinator.settings)
    store = Store.connect(settings.redis_url, settings.redis_prefix)
    record = store.job("a", job.job_id)
    builds = []

    def counted_load(*args):
        builds.append(args[-1])
        return load_round_model(*args)

    models = RoundModels(capacity=1, load=counted_load)
    first = results.explain(store, settings, models, record, "v3", 0, 5)
    again = results.explain(store, settings, models, record, "v3", 0, 5)
    other = results.explain(store, settings, models, record, "t7", 0, 5)
    assert builds == [0]
    assert again == first and other.explanation.example_id == "t7"
    # The uncached path (a model built for this call alone) gives the same explanation.
    fresh = results.explain(store, settings, RoundModels(capacity=1), record, "v3", 0, 5)
    assert [i.example_id for i in fresh.explanation.proponents] == [i.example_id for i in first.explanation.proponents]
    assert [i.score for i in fresh.explanation.proponents] == pytest.approx([i.score for i in first.explanation.proponents])
    # A capacity of one round: round 1 evicts round 0, which is then built again.
    results.explain(store, settings, models, record, "v3", 1, 5)
    results.explain(store, settings, models, record, "v3", 0, 5)
    assert builds == [0, 1, 0]
    store.redis.close()


def _open_stream(stub, token: str, job_id: str):
    """A WatchJob stream and its first event, which shows the server counted it."""
    stream = stub.WatchJob(pb.WatchJobRequest(job_id=job_id), metadata=(("authorization", f"Bearer {token}"),))
    return stream, next(stream)


def _redis_readers_blocked_on_events(redis_url: str, samples: int = 6) -> int:
    """The most Redis connections seen waiting in XREAD at once, over a second or so."""
    client = redis.Redis.from_url(redis_url)
    counts = []
    for _ in range(samples):
        counts.append(sum(1 for c in client.client_list() if c["cmd"] == "xread" and "b" in c["flags"]))
        time.sleep(0.25)
    client.close()
    return max(counts)


def test_stream_caps_are_per_tenant_and_watchers_share_one_reader(coordinator, finished, files, redis_url):
    dataset, _ = finished
    a, b = GbairClient(coordinator.target, TOKEN_A), GbairClient(coordinator.target, TOKEN_B)
    running = a.submit(endless_job(dataset.dataset_id))
    waiting = a.submit(endless_job(dataset.dataset_id))
    wait_for_status(a, running.job_id, pb.RUNNING)
    # The waiting job sends no events, so each Redis reader of its stream sits in a blocking XREAD.
    streams = [_open_stream(a.stub, TOKEN_A, waiting.job_id) for _ in range(STREAMS_PER_TENANT)]
    assert [first.phase for _, first in streams] == ["queued"] * STREAMS_PER_TENANT
    assert _redis_readers_blocked_on_events(redis_url) == 1

    for token in (TOKEN_A, TOKEN_A_READ):
        with pytest.raises(grpc.RpcError) as refused:
            _open_stream(a.stub, token, running.job_id)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_watch_streams_per_tenant" in refused.value.details()

    # Another tenant is not held to tenant a's count, and its cheap calls answer.
    b_dataset = b.upload_dataset("reviews-b", files["train"], files["validation"])
    b_job = b.submit(pb.JobSpec(dataset_id=b_dataset.dataset_id))
    b_stream, b_first = _open_stream(b.stub, TOKEN_B, b_job.job_id)
    assert b_first.phase == "queued" and [j.job_id for j in b.list_jobs()] == [b_job.job_id]

    # A stream the client closes gives its place back.
    left, _ = streams.pop()
    left.cancel()
    deadline = time.monotonic() + 10
    while True:
        try:
            streams.append(_open_stream(a.stub, TOKEN_A, waiting.job_id))
            break
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
            time.sleep(0.2)

    # Every stream of the job gets every event up to the terminal one, then ends.
    a.cancel(waiting.job_id)
    for stream, first in streams:
        assert [first.phase] + [e.phase for e in stream] == ["queued", "cancelled"]
    b.cancel(b_job.job_id)
    assert [e.phase for e in b_stream] == ["cancelled"]
    a.cancel(running.job_id)
    assert [e.phase for e in a.watch(running.job_id)][-1] == "cancelled"
    a.close()
    b.close()
