"""The influence service on a real local Ray Serve: sharded scoring equals core's, shares one stored copy of
the query gradients among all shards, survives a killed replica, refuses a bad request with a clear error,
keeps the router's warnings about shards waiting for a replica out of the log, and runs under a Serve
controller that wakes at the configured interval."""

import asyncio
import dataclasses
import logging
import threading
import time

import numpy as np
import psutil
import pytest
import ray
import torch
from ray import serve

from gbair.core.data import corrupt_labels
from gbair.core.influence import (
    INFLUENCE_METHODS,
    NEEDS_INITIAL_STATE,
    query_gradients,
    suspicion_scores,
    training_statistics,
)
from gbair.core.model import PetClassifier, encode
from gbair.core.model.inputs import EncodedSet
from gbair.core.training import train_classifier
from gbair.serving.checkpoints import store_checkpoints
from gbair.serving.deployment import InfluenceScorer
from gbair.serving.driver import CONTROL_LOOP_INTERVAL_VARIABLE, ShardedScoring
from gbair.serving.shards import ShardRequest, ShardRequestError, split
from test_training import separable

LABELS = ["negative", "positive"]


def _job(config, storage_path, train_size):
    """A trained tiny classifier, its checkpoints in storage, its validation errors' gradients and core's
    own statistics for the training set."""
    classifier = PetClassifier.build(config.model, LABELS, seed=0)
    train = encode(classifier, corrupt_labels(separable(train_size), 0.25, seed=0)[0])
    training = train_classifier(classifier, train, config.train)
    queries = query_gradients(classifier, training.checkpoints, encode(classifier, separable(12, "v")), 4)
    expected = training_statistics(classifier, training.checkpoints, train, queries, 4)
    references = store_checkpoints(training.checkpoints, storage_path)
    return config, train, queries, references, expected


@pytest.fixture(scope="module")
def job(ray_cluster, tiny_config):
    return _job(tiny_config, ray_cluster.storage_path, 40)


def _score(handle, serving, job, progress=lambda *args: None) -> tuple:
    config, train, queries, references, _ = job
    scoring = ShardedScoring(handle, serving)
    statistics = scoring.statistics(config.model, LABELS, references, train, ray.put(queries), 4, progress)
    return statistics, scoring


def _assert_equal_to_core(statistics, expected):
    assert statistics.train_ids == expected.train_ids
    assert torch.equal(statistics.train_labels, expected.train_labels)
    for field in ("dots", "train_sq_norms", "train_losses", "train_margins", "final_logits", "query_sq_norms", "learning_rates"):
        torch.testing.assert_close(getattr(statistics, field), getattr(expected, field), rtol=1e-5, atol=1e-7)
    # The DDA methods take a second set of statistics (at the initial prompt) from this same path.
    for method in sorted(set(INFLUENCE_METHODS) - NEEDS_INITIAL_STATE):
        trusted = {"trusted_labels": expected.query_labels}
        ours, core = suspicion_scores(statistics, method, **trusted), suspicion_scores(expected, method, **trusted)
        relative = np.abs(ours - core).max() / max(np.abs(core).max(), 1e-12)
        assert relative <= 1e-5, (method, relative)


@pytest.mark.parametrize("size, shard_size, batch_size", [(103, 24, 8), (96, 32, 8), (7, 32, 8), (50, 1, 4)])
def test_shards_keep_core_batches_and_go_heaviest_first(size, shard_size, batch_size):
    generator = torch.Generator().manual_seed(size)
    lengths = torch.randint(1, 60, (size,), generator=generator).tolist()
    train = EncodedSet([f"x{i}" for i in range(size)], [[5] * n for n in lengths], torch.zeros(size, dtype=torch.long), 0)
    core_batches = [batch.positions.tolist() for batch in train.batches(batch_size)]
    shards = split(train, shard_size, batch_size)

    assert sorted(sum(shards, [])) == list(range(size))
    assert len(shards) == -(-len(core_batches) // max(1, shard_size // batch_size))
    shard_batches = [
        [[shard[i] for i in batch.positions.tolist()] for batch in train.subset(shard).batches(batch_size)]
        for shard in shards
    ]
    assert sorted(sum(shard_batches, [])) == sorted(core_batches)  # the same padded batches as in one process
    loads = [_padded_tokens(train.subset(shard), batch_size) for shard in shards]
    assert loads == sorted(loads, reverse=True)  # the driver sends the heaviest work first


def _padded_tokens(encoded: EncodedSet, batch_size: int) -> int:
    return sum(batch.input_ids.numel() for batch in encoded.batches(batch_size))


def test_shards_of_a_long_tailed_set_cost_the_same():
    # Eight batches of four, as SST-2's padded widths run: dealing batch b to shard b mod 2 would give one
    # shard 99 tokens a row and the other 136 (the longest batch and every second-longest).
    widths = [12, 17, 20, 24, 28, 32, 39, 63]
    lengths = [width for width in widths for _ in range(4)]
    train = EncodedSet([f"x{i}" for i in range(32)], [[5] * n for n in lengths], torch.zeros(32, dtype=torch.long), 0)
    loads = [_padded_tokens(train.subset(shard), 4) for shard in split(train, 16, 4)]
    assert len(loads) == 2 and max(loads) / min(loads) < 1.03, loads  # 119 and 116


def test_gathered_statistics_equal_core_for_every_method(influence_handle, ray_cluster, job):
    done = []
    statistics, _ = _score(influence_handle, ray_cluster.serving, job, lambda task, n, total: done.append((n, total)))
    _assert_equal_to_core(statistics, job[-1])
    assert done[-1] == (40, 40) and len(done) == 10  # shards of one batch of 4 (shard_size 6)

    # Score again: every replica has loaded the model once and read each checkpoint once, however many
    # shards it took, and scored them all on one thread.
    _score(influence_handle, ray_cluster.serving, job)
    counts = [influence_handle.load_counts.remote().result() for _ in range(6)]
    assert all(c["model_loads"] == 1 and 1 <= c["checkpoint_reads"] <= len(job[3]) for c in counts), counts
    assert all(c["scoring_threads"] == 1 for c in counts), counts


def test_the_serve_controller_the_driver_starts_wakes_at_the_configured_interval(influence_handle, ray_cluster):
    # This process started the local cluster, so Ray's workers, the controller among them, descend from it.
    (controller,) = [process for process in psutil.Process().children(recursive=True) if _is_serve_controller(process)]
    environment = controller.environ()
    assert environment.get(CONTROL_LOOP_INTERVAL_VARIABLE) == str(ray_cluster.serving.controller_loop_interval_s)


def _is_serve_controller(process: psutil.Process) -> bool:
    try:
        command = process.cmdline()
    except psutil.NoSuchProcess:  # a worker Ray reaped while we looked
        return False
    return bool(command) and command[0].startswith("ray::ServeController")


class RecordingHandle:
    """A DeploymentHandle stand-in that keeps every request sent through it."""

    def __init__(self, handle):
        self.handle = handle
        self.requests = []
        self.score = self

    def remote(self, request):
        self.requests.append(request)
        return self.handle.score.remote(request)


def test_every_shard_carries_the_one_reference_to_the_query_gradients_and_nothing_is_put_per_scoring(
    influence_handle, ray_cluster, job, monkeypatch
):
    config, train, queries, references, expected = job
    stored = ray.put(queries)
    put_values = []
    put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **options: put_values.append(value) or put(value, **options))
    handle = RecordingHandle(influence_handle)
    statistics = ShardedScoring(handle, ray_cluster.serving).statistics(config.model, LABELS, references, train, stored, 4)

    _assert_equal_to_core(statistics, expected)
    assert put_values == []
    assert len(handle.requests) == 10
    assert all(request.queries is stored for request in handle.requests)


@pytest.fixture
def stalling_scorer(ray_cluster, tmp_path):
    """A one-replica influence application whose replica stalls inside its next `kills` requests until a
    killer thread, seeing it stall, kills it with `ray.kill`: each kill falls in the middle of a request."""
    kills_left, stalled = tmp_path / "kills-left", tmp_path / "stalled"
    scorer_class = InfluenceScorer.func_or_class

    class StallsMidRequest(scorer_class):
        async def score(self, request):
            remaining = int(kills_left.read_text())
            if remaining > 0:
                kills_left.write_text(str(remaining - 1))
                stalled.touch()
                await asyncio.sleep(120)
            return await super().score(request)

    app_name = "gbair-influence-stalling"
    deployment = serve.deployment(
        StallsMidRequest, name="StallsMidRequest", num_replicas=1, max_ongoing_requests=1, health_check_period_s=1
    )
    handle = serve.run(deployment.bind(threads=1), name=app_name, route_prefix=None)
    killers, test_over = [], threading.Event()

    def kill_each_stalled_replica(count: int):
        for _ in range(count):
            deadline = time.monotonic() + 60
            while not stalled.exists():
                if test_over.is_set():
                    return
                assert time.monotonic() < deadline, "the replica never stalled"
                time.sleep(0.05)
            stalled.unlink()
            for actor in ray.util.list_named_actors(all_namespaces=True):
                if actor["name"].startswith(f"SERVE_REPLICA::{app_name}#"):
                    ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]))

    def with_kills(count: int):
        kills_left.write_text(str(count))
        killer = threading.Thread(target=kill_each_stalled_replica, args=(count,), daemon=True)
        killer.start()
        killers.append(killer)
        return handle

    yield with_kills
    test_over.set()
    for killer in killers:
        killer.join(timeout=60)
    serve.delete(app_name)


def test_a_replica_killed_mid_shard_is_replaced_and_the_shard_resent(stalling_scorer, ray_cluster, job):
    statistics, scoring = _score(stalling_scorer(1), ray_cluster.serving, job)
    # The request on the dead replica fails with ActorDiedError and the driver sends it again; requests
    # still queued in the router are rerouted by Serve itself.
    assert scoring.resent_shards == 1
    _assert_equal_to_core(statistics, job[-1])


def test_a_shard_that_keeps_losing_its_replica_fails_with_a_clear_error(stalling_scorer, ray_cluster, job):
    # One shard, so that every kill falls on it, and one kill more than the driver tolerates: once, in CI
    # under load, two kills reached the driver as one loss and the third replica scored the shard.
    serving = ray_cluster.serving.model_copy(update={"max_shard_retries": 1, "shard_size": 40})
    with pytest.raises(RuntimeError, match=r"shard 0 \(40 examples\) lost its replica 2 times; giving up"):
        _score(stalling_scorer(3), serving, job)


class RecordingLogHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_shards_waiting_for_the_one_replica_leave_no_routing_warnings_in_the_log(ray_cluster, job):
    # Serve's router warns every 50 routing attempts (about 2.6 s at a 50 ms backoff) that a request found
    # no free replica. Here the second shard waits the first one's 6 s: it would warn at least twice.
    class SlowScorer(InfluenceScorer.func_or_class):
        async def score(self, request):
            await asyncio.sleep(6)
            return await super().score(request)

    app_name = "gbair-influence-slow"
    # The service's own deployment settings (one shard per replica, the router's backoff), one replica.
    deployment = InfluenceScorer.options(func_or_class=SlowScorer, name="SlowScorer", num_replicas=1)
    handle = serve.run(deployment.bind(threads=1), name=app_name, route_prefix=None)
    serve_log, recorded = logging.getLogger("ray.serve"), RecordingLogHandler()
    serve_log.addHandler(recorded)
    try:
        started = time.monotonic()
        statistics, _ = _score(handle, ray_cluster.serving.model_copy(update={"shard_size": 20}), job)
        waited = time.monotonic() - started
    finally:
        serve_log.removeHandler(recorded)
        serve.delete(app_name)
    _assert_equal_to_core(statistics, job[-1])
    assert waited >= 12
    assert not [m for m in recorded.messages if m.startswith("Failed to route request")], recorded.messages


def test_a_bad_shard_request_gets_a_clear_error_and_no_retry(influence_handle, ray_cluster, job):
    config, train, queries, references, _ = job
    good = ShardRequest(config.model, LABELS, references, ray.put(queries), train.subset(range(5)), 4)

    wrong_width = dataclasses.replace(queries, gradients=queries.gradients[:, :, :-1])
    with pytest.raises(ShardRequestError, match=r"query gradients have shape .* expected \(checkpoints, queries"):
        influence_handle.score.remote(dataclasses.replace(good, queries=ray.put(wrong_width))).result()

    with pytest.raises(ShardRequestError, match="queries must be an ObjectRef to the query gradients"):
        influence_handle.score.remote(dataclasses.replace(good, queries=queries)).result()

    with pytest.raises(ShardRequestError, match="no gbair checkpoint at"):
        influence_handle.score.remote(dataclasses.replace(good, checkpoints=[r + "-missing" for r in references])).result()

    with pytest.raises(ShardRequestError, match="the shard has no training examples"):
        influence_handle.score.remote(dataclasses.replace(good, shard=train.subset([]))).result()

    with pytest.raises(ShardRequestError, match="expected a ShardRequest"):
        influence_handle.score.remote({"ids": ["a"]}).result()

    scoring = ShardedScoring(influence_handle, ray_cluster.serving)
    with pytest.raises(ShardRequestError, match="labels must lie in 0..1"):
        scoring.statistics(
            config.model, LABELS, references, dataclasses.replace(train, labels=train.labels + 5), ray.put(queries), 4
        )
    assert scoring.resent_shards == 0
