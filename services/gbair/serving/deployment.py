"""The Ray Serve deployment that scores one shard of a training set per request.

Each replica builds the model the first time a request names it and keeps it (one backbone per replica),
and keeps the checkpoints it has read, so a round's many shards cost one model load and one read per
checkpoint on each replica. It reads the query gradients from the object store through the request's
reference. The scoring itself is core's training_statistics on the shard.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import ray
import torch
from ray import serve

from gbair.core.influence import InfluenceStatistics, QueryGradients, training_statistics
from gbair.core.model.pet import PetClassifier
from gbair.core.training import resolve_device
from gbair.serving.checkpoints import StoredCheckpoint, read_checkpoint
from gbair.serving.shards import ShardRequest, ShardRequestError


# A replica takes one shard at a time (its one scoring thread: scoring is CPU/GPU bound and loads checkpoints
# into the one model), so the router can never queue a second shard behind a busy replica while another idles.
# With two shards in flight per replica it did: its queue-length cache forgets a replica after 10 s, and a
# replica it still remembers wins over one it must probe, so both shards of a call went to one replica in one
# call of three. The shards that wait in the router retry every 50 ms at most instead of Serve's 0.5 s.
@serve.deployment(max_ongoing_requests=1, request_router_config={"max_backoff_s": 0.05})
class InfluenceScorer:
    def __init__(self, threads: int = 1, checkpoint_cache_size: int = 64):
        # Every shard is scored on this one thread, not on whichever of Serve's pool threads takes the
        # request: glibc gives each thread that allocates its own heap (arena), and the freed activations
        # of a shard stay mapped in it, so scoring on many threads grew a replica by about 0.7 GiB a shard.
        self._scoring_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="influence-scoring", initializer=torch.set_num_threads, initargs=(threads,)
        )
        self._model_key: tuple[str, tuple[str, ...]] | None = None
        self._classifier: PetClassifier | None = None
        self._checkpoints: OrderedDict[str, StoredCheckpoint] = OrderedDict()
        self._cache_size = checkpoint_cache_size
        self._model_loads = 0
        self._checkpoint_reads = 0
        self._threads_that_scored: set[int] = set()

    async def score(self, request: ShardRequest) -> InfluenceStatistics:
        if not isinstance(request, ShardRequest):
            raise ShardRequestError(f"expected a ShardRequest, got {type(request).__name__}")
        return await asyncio.get_running_loop().run_in_executor(self._scoring_thread, self._score, request)

    def _score(self, request: ShardRequest) -> InfluenceStatistics:
        self._threads_that_scored.add(threading.get_ident())
        classifier = self._classifier_for(request)
        queries = _query_gradients(request)
        request.validate(queries, classifier.num_trainable)
        checkpoints = [self._checkpoint(reference) for reference in request.checkpoints]
        stored_rates = torch.tensor([c.learning_rate for c in checkpoints], dtype=torch.float64)
        if not torch.equal(stored_rates, queries.learning_rates.double()):
            raise ShardRequestError(
                f"the query gradients' learning rates {queries.learning_rates.tolist()} do not match "
                f"the checkpoints' {stored_rates.tolist()}: they were taken at other checkpoints"
            )
        return training_statistics(classifier, checkpoints, request.shard, queries, request.batch_size)

    def load_counts(self) -> dict[str, int]:
        """How often this replica built a model and read a checkpoint, and on how many threads it scored:
        evidence that both are cached and that scoring keeps to one thread."""
        return {"model_loads": self._model_loads, "checkpoint_reads": self._checkpoint_reads,
                "scoring_threads": len(self._threads_that_scored)}

    def _classifier_for(self, request: ShardRequest) -> PetClassifier:
        key = (request.model.model_dump_json(), tuple(request.label_names))
        if key != self._model_key:
            self._classifier = None  # free the old backbone before loading the next
            try:
                classifier = PetClassifier.build(request.model, request.label_names)
            except (OSError, ValueError) as error:
                raise ShardRequestError(f"cannot load model {request.model.name_or_path!r}: {error}") from error
            self._classifier = classifier.to(resolve_device("auto"))
            self._model_key = key
            self._model_loads += 1
        return self._classifier

    def _checkpoint(self, reference: str) -> StoredCheckpoint:
        if reference in self._checkpoints:
            self._checkpoints.move_to_end(reference)
            return self._checkpoints[reference]
        try:
            checkpoint = read_checkpoint(reference)
        except FileNotFoundError as error:
            raise ShardRequestError(str(error)) from error
        self._checkpoint_reads += 1
        self._checkpoints[reference] = checkpoint
        if len(self._checkpoints) > self._cache_size:
            self._checkpoints.popitem(last=False)
        return checkpoint


def _query_gradients(request: ShardRequest) -> QueryGradients:
    if not isinstance(request.queries, ray.ObjectRef):
        raise ShardRequestError(
            f"queries must be an ObjectRef to the query gradients, got {type(request.queries).__name__}"
        )
    queries = ray.get(request.queries)
    if not isinstance(queries, QueryGradients):
        raise ShardRequestError(f"the queries' reference holds a {type(queries).__name__}, not QueryGradients")
    return queries


def build_app(args: dict) -> serve.Application:
    """Application builder for `serve deploy` / KubeRay (deploy/serve_config.yaml); args go to the constructor."""
    return InfluenceScorer.bind(**args)
