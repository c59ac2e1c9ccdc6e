"""Prompt-tuning on the cluster: one worker (a Ray task) reproduces core's training exactly, from a training
set that reaches it through the object store, round after round, and trainings side by side, of one set at
other seeds or of each fold's own set; two workers (Ray Train) share every
batch; workers ask for the custom resource that keeps them on their worker group."""

from pathlib import Path

import ray
import torch

from gbair.core.data import corrupt_labels
from gbair.core.evaluation import accuracy, predict_probabilities
from gbair.core.model import EncodedSet, PetClassifier, encode
from gbair.core.training import train_classifier
from gbair.distributed.config import LOCAL_MODEL_ACTORS, RayConfig, machine_cpus
from gbair.distributed import trainer
from gbair.distributed.trainer import train_each_on_ray, train_on_ray, worker_resources
from gbair.serving.checkpoints import remove_runs
from test_training import separable

LABELS = ["negative", "positive"]


def _core_run(config):
    classifier = PetClassifier.build(config.model, LABELS, seed=config.train.seed)
    train = encode(classifier, corrupt_labels(separable(36), 0.2, seed=0)[0])
    return classifier, train, train_classifier(classifier, train, config.train)


def _recording(monkeypatch) -> tuple[list, list]:
    """What this process puts in the object store, and every Ray Train loop config."""
    put_values, loop_configs = [], []
    put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **options: put_values.append(value) or put(value, **options))

    class RecordingTrainer(trainer.TorchTrainer):
        def __init__(self, *args, train_loop_config, **options):
            loop_configs.append(train_loop_config)
            super().__init__(*args, train_loop_config=train_loop_config, **options)

    monkeypatch.setattr(trainer, "TorchTrainer", RecordingTrainer)
    return put_values, loop_configs


def _recorded_waits(monkeypatch) -> list:
    """The references of every `ray.get` this process makes: one entry per wait."""
    waits = []
    get = ray.get
    monkeypatch.setattr(ray, "get", lambda refs, **options: waits.append(refs) or get(refs, **options))
    return waits


def _assert_same_checkpoints(ours, theirs) -> None:
    for mine, reference in zip(ours.checkpoints, theirs.checkpoints, strict=True):
        for name, tensor in reference.state.items():
            assert torch.equal(mine.state[name], tensor), name


def test_one_worker_reproduces_core_training_in_a_task_and_stores_checkpoints(ray_cluster, tiny_config, monkeypatch):
    classifier, train, expected = _core_run(tiny_config)
    put_values, loop_configs = _recording(monkeypatch)
    result = train_on_ray(tiny_config, ray_cluster, LABELS, expected.initial_state, train)
    again = train_on_ray(tiny_config, ray_cluster, LABELS, expected.initial_state, train)

    # The training set went into the object store once per training, and no Ray Train run started.
    training_sets = [value for value in put_values if isinstance(value, EncodedSet)]
    assert len(training_sets) == 2 and all(value is train for value in training_sets)
    assert loop_configs == []
    assert [c.step for c in result.checkpoints] == [c.step for c in expected.checkpoints] == [5, 10, 15]
    assert [c.learning_rate for c in result.checkpoints] == [c.learning_rate for c in expected.checkpoints]
    for run in (result, again):
        _assert_same_checkpoints(run, expected)
    # One process trains in a single one: the training dynamics come back too.
    torch.testing.assert_close(result.training_logits, expected.training_logits)
    for checkpoint in result.checkpoints:
        stored = Path(checkpoint.reference)
        assert stored.is_relative_to(Path(ray_cluster.storage_path)) and (stored / "pet_state.safetensors").is_file()
        assert stored.parent.name.startswith("gbair-train-")


def test_trainings_at_other_seeds_are_in_flight_together_on_one_copy_of_the_training_set(
    ray_cluster, tiny_config, monkeypatch
):
    classifier, train, _ = _core_run(tiny_config)
    seeds = [1000, 2000]
    expected = []
    for seed in seeds:
        classifier.load_pet_state(classifier.seeded_state(seed))
        expected.append(train_classifier(classifier, train, tiny_config.with_training_seed(seed).train))
    put_values, _ = _recording(monkeypatch)
    waits = _recorded_waits(monkeypatch)
    configs = [tiny_config.with_training_seed(seed) for seed in seeds]
    results = train_each_on_ray(configs, ray_cluster, LABELS, [run.initial_state for run in expected], [train, train])

    assert len([value for value in put_values if isinstance(value, EncodedSet)]) == 1
    # Both tasks were submitted before the driver waited, so the cluster could run them side by side.
    assert len(waits) == 1 and len(waits[0]) == 2
    for result, run in zip(results, expected, strict=True):
        _assert_same_checkpoints(result, run)
    remove_runs([c.reference for result in results for c in result.checkpoints])


def test_fold_models_train_side_by_side_each_on_its_own_set(ray_cluster, tiny_config, monkeypatch):
    classifier, train, _ = _core_run(tiny_config)
    folds = [train.subset(list(range(0, 24))), train.subset(list(range(12, 36)))]
    start = classifier.seeded_state(tiny_config.train.seed)
    expected = []
    for fold in folds:
        classifier.load_pet_state(start)
        expected.append(train_classifier(classifier, fold, tiny_config.train))
    put_values, _ = _recording(monkeypatch)
    waits = _recorded_waits(monkeypatch)
    results = train_each_on_ray([tiny_config] * 2, ray_cluster, LABELS, [start] * 2, folds)

    training_sets = [value for value in put_values if isinstance(value, EncodedSet)]
    assert len(training_sets) == 2 and all(put is fold for put, fold in zip(training_sets, folds))
    assert len(waits) == 1 and len(waits[0]) == 2
    for result, run in zip(results, expected, strict=True):
        assert [c.step for c in result.checkpoints] == [c.step for c in run.checkpoints]
        _assert_same_checkpoints(result, run)
    remove_runs([c.reference for result in results for c in result.checkpoints])


def test_two_workers_share_each_batch_on_ray_train_and_train_comparably(ray_cluster, tiny_config, monkeypatch):
    classifier, train, expected = _core_run(tiny_config)
    two_workers = ray_cluster.model_copy(update={"num_workers": 2})
    put_values, loop_configs = _recording(monkeypatch)
    result = train_on_ray(tiny_config, two_workers, LABELS, expected.initial_state, train)

    # The loop config holds the training set's reference only: Ray Train pickles it into what it ships.
    [training_set] = [value for value in put_values if isinstance(value, EncodedSet)]
    assert training_set is train
    [loop_config] = loop_configs
    assert isinstance(loop_config["train"], ray.ObjectRef)
    assert not [value for value in loop_config.values() if isinstance(value, EncodedSet)]
    assert [c.step for c in result.checkpoints] == [c.step for c in expected.checkpoints]
    # Same updates up to summation order: the states agree closely, not bit for bit, and so do the logits
    # the two workers recorded for their rows, added up into one record.
    for name, tensor in expected.final_state.items():
        torch.testing.assert_close(result.final_state[name], tensor, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(result.training_logits, expected.training_logits, rtol=1e-3, atol=1e-4)
    accuracies = []
    for state in (expected.final_state, result.final_state):
        classifier.load_pet_state(state)
        accuracies.append(accuracy(predict_probabilities(classifier, train), train.labels))
    assert abs(accuracies[0] - accuracies[1]) <= 1 / len(train)


def test_workers_ask_for_their_custom_resource_beside_a_cpu_or_a_gpu():
    on_a_cluster = RayConfig(address="auto")
    assert worker_resources(on_a_cluster) == {"CPU": 1.0} and on_a_cluster.worker_threads == 1
    assert worker_resources(RayConfig(address="auto", train_resources={"gbair-train": 1})) == {"CPU": 1.0, "gbair-train": 1.0}
    assert worker_resources(RayConfig(address="auto", cpus_per_worker=4)) == {"CPU": 4.0}
    assert worker_resources(RayConfig(train_resources={"gbair-train": 1}, use_gpu=True)) == {"GPU": 1.0, "gbair-train": 1.0}
    # On a local cluster, training and scoring take turns: the workers share the machine's CPUs, and the
    # cluster announces room for them beside the replicas.
    cpus = machine_cpus()
    local = RayConfig(num_workers=2)
    assert local.worker_cpus == max(1, cpus // 2) and local.worker_threads == int(local.worker_cpus)
    assert worker_resources(RayConfig()) == {"CPU": float(cpus)}
    assert RayConfig().logical_cpus >= cpus + RayConfig().serving.max_replicas
    # A local cluster announces enough of them for every worker, or training would wait forever.
    assert RayConfig(num_workers=2, train_resources={"gbair-train": 1}).local_custom_resources == {"gbair-train": 2.0}
    # ... and room for the model actors' resource, should the settings name one.
    with_actors = RayConfig(train_resources={"gbair-train": 1}, model_actors={"resources": {"gbair-model": 1}})
    assert with_actors.local_custom_resources == {"gbair-train": 1.0, "gbair-model": float(LOCAL_MODEL_ACTORS)}
