"""RayBackend: a round whose every model computation runs on the cluster. This process cannot build a
PetClassifier here, yet the round flags what the in-process backend flags (and trains its data a second time,
from another seed, as it does), the query gradients go from the job's actor to the scoring shards by
reference, the adapter comes back from the actor, and confident learning's fold models leave nothing in
storage. The backend is ready once one-worker training's process has its model."""

import numpy as np
import ray
from ray import serve

from gbair.core.confident_learning import out_of_sample_fit
from gbair.core.data import DataSplits, corrupt_labels
from gbair.core.influence import QueryGradients
from gbair.core.model.pet import PetClassifier
from gbair.core.recovery import Recovery
from gbair.distributed import trainer
from gbair.distributed.backend import RayBackend
from gbair.serving.driver import ShardedScoring
from test_training import separable


def _round_zero(recovery: Recovery, flipped):
    state = recovery.start(flipped)
    trained = recovery.train_round(state)
    return recovery.finish_round(state, trained), trained


def test_a_round_on_ray_builds_no_model_here_and_passes_query_gradients_by_reference(
    ray_cluster, tiny_config, tmp_path, monkeypatch
):
    train, flipped = corrupt_labels(separable(32, "t"), 0.25, seed=0)
    splits = DataSplits("toy", train, separable(12, "v"), separable(8, "x"), "csv")
    # Two trainings of the round's data: the second, from another seed's start and batch order, runs on Ray too.
    recovery_settings = tiny_config.recovery.model_copy(update={"action": "relabel", "round_trainings": 2})
    config = tiny_config.model_copy(update={"recovery": recovery_settings})
    expected, _ = _round_zero(Recovery(splits, config), flipped)

    def refuse(self, *args, **kwargs):
        raise AssertionError("a PetClassifier was built in the driver's process")

    put_values, scored_queries = [], []
    put = ray.put
    statistics = ShardedScoring.statistics
    ray_config = ray_cluster.model_copy(update={"storage_path": str(tmp_path / "storage")})
    with monkeypatch.context() as patched:
        patched.setattr(PetClassifier, "__init__", refuse)
        patched.setattr(ray, "put", lambda value, **options: put_values.append(value) or put(value, **options))
        patched.setattr(ShardedScoring, "statistics",
                        lambda self, *args: scored_queries.append(args[4]) or statistics(self, *args))
        backend = RayBackend(config, ray_config, splits.label_names)
        recovery = Recovery(splits, config, backend=backend)
        state, trained = _round_zero(recovery, flipped)
        adapter = backend.save_adapter(trained.model_state, tmp_path / "adapter")
        # Confident learning's fold models train on the cluster too, and leave nothing in storage.
        runs_before = sorted((tmp_path / "storage").iterdir())
        fit = out_of_sample_fit(backend, backend.encode(train), folds=2, seed=0)
        assert sorted((tmp_path / "storage").iterdir()) == runs_before
        assert fit.probabilities.shape == (len(train), 2)

    first, reference = state.rounds[0], expected.rounds[0]
    assert first.flagged_ids == reference.flagged_ids and len(first.flagged_ids) == 4
    assert first.relabels == reference.relabels
    assert first.val_accuracy == reference.val_accuracy
    assert len(first.val_accuracies) == 2 and first.val_accuracies == reference.val_accuracies
    assert (first.model_training, first.test_accuracy) == (reference.model_training, reference.test_accuracy)
    np.testing.assert_allclose(first.flagged_probabilities, reference.flagged_probabilities, atol=1e-5)
    assert not any(isinstance(value, QueryGradients) for value in put_values)
    assert len(scored_queries) == 1 and isinstance(scored_queries[0], ray.ObjectRef)
    saved = PetClassifier.load_adapter(adapter)
    assert saved.label_names == splits.label_names
    for name, value in saved.pet_state().items():
        assert value.cpu().equal(trained.model_state[name].cpu()), name


@ray.remote
def _kept_model_hits(model: str, label_names: list[str]) -> int:
    """How many of this process's calls for that model found it already built: 1 when it had been."""
    before = trainer._kept_classifier.cache_info()
    trainer._kept_classifier(model, tuple(label_names))
    after = trainer._kept_classifier.cache_info()
    return (after.hits - before.hits) - (after.misses - before.misses)


def test_the_training_process_has_built_the_model_when_the_backend_is_ready_and_serve_runs_no_proxy(
    ray_cluster, tiny_config
):
    labels = ["a", "b", "c"]  # a model no earlier test trained
    RayBackend(tiny_config, ray_cluster, labels)
    next_task = trainer._on_training_worker(_kept_model_hits, ray_cluster)
    assert ray.get(next_task.remote(tiny_config.model.model_dump_json(), labels)) == 1
    assert serve.status().proxies == {}
