"""Prompt-tuning on the cluster, with the checkpoints written to shared storage.

One worker trains in a Ray task: core's loop exactly, so the checkpoints equal a single-process run's for
the same seed. Ray keeps the task's process and its model for the next round, where Ray Train would start
a controller and a worker group every round (about 50 s on 2 cores, docs/benchmarks.md).

More workers train on Ray Train: every worker runs core's loop on its share of each batch, the gradients
are all-reduced (gloo on CPU, nccl on GPU), and rank 0 reports each checkpoint to storage, the last one
with the logits recorded while training, which the workers add up from their rows. Each worker takes every
world_size-th row of each batch, so the update is still the mean over the whole batch and only the
summation order differs.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import ray
import ray.train
import torch
import torch.distributed as dist
from ray.train import CheckpointConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from gbair.core.config import GbairConfig, ModelConfig
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier, PetState
from gbair.core.training import DataParallel, TrainingResult, resolve_device, train_classifier
from gbair.distributed.config import RayConfig
from gbair.serving.checkpoints import (
    TRAINING_RUN_PREFIX,
    StoredCheckpoint,
    read_checkpoint,
    read_training_logits,
    store_checkpoints,
    write_checkpoint,
    write_training_logits,
)


def train_on_ray(
    config: GbairConfig, ray_config: RayConfig, label_names: list[str], initial_state: PetState, train: EncodedSet
) -> TrainingResult:
    """Train from `initial_state` on `train`; the checkpoints come back with their place in storage. The
    training set travels by reference: it is put in the object store once, and each worker reads it from
    its node's store."""
    return train_each_on_ray([config], ray_config, label_names, [initial_state], [train])[0]


def train_each_on_ray(
    configs: list[GbairConfig], ray_config: RayConfig, label_names: list[str], initial_states: list[PetState],
    trains: list[EncodedSet],
) -> list[TrainingResult]:
    """`train_on_ray` once for each config, initial state and training set (trainings of a round's data at
    other seeds, or fold models). With one worker each they run side by side as far as the cluster has
    room, and trainings of the same set share one copy of it; Ray Train's worker groups train one after
    the other."""
    if ray_config.num_workers > 1:
        return [train_with_ray_train(config, ray_config, label_names, state, train)
                for config, state, train in zip(configs, initial_states, trains, strict=True)]
    started = time.perf_counter()
    distinct = {id(train): train for train in trains}
    shared = {key: ray.put(train) for key, train in distinct.items()}
    task = _on_training_worker(_train_in_task, ray_config)
    results = ray.get([
        task.remote(config.model_dump(), label_names, _on_cpu(state), shared[id(train)], ray_config.storage_path,
                    ray_config.worker_threads)
        for config, state, train in zip(configs, initial_states, trains, strict=True)
    ])
    return [dataclasses.replace(result, seconds=time.perf_counter() - started) for result in results]


def prepare_training(config: GbairConfig, ray_config: RayConfig, label_names: list[str]) -> list[ray.ObjectRef]:
    """Build the model of one-worker training now, in a process the first training task then reuses: its
    start (a new process importing torch and loading the backbone, about 20 s on 2 cores) overlaps the
    influence service's instead of delaying round 0. Nothing with Ray Train, whose workers start every round."""
    if ray_config.num_workers > 1:
        return []
    return [_on_training_worker(_build_in_task, ray_config).remote(config.model.model_dump_json(), label_names)]


def _on_training_worker(task: ray.remote_function.RemoteFunction, ray_config: RayConfig) -> ray.remote_function.RemoteFunction:
    resources = worker_resources(ray_config)
    return task.options(num_cpus=resources.pop("CPU", 0.0), num_gpus=resources.pop("GPU", 0.0), resources=resources)


def train_with_ray_train(
    config: GbairConfig, ray_config: RayConfig, label_names: list[str], initial_state: PetState, train: EncodedSet
) -> TrainingResult:
    """`train_on_ray` on Ray Train's `ray_config.num_workers` workers, whatever their number."""
    started = time.perf_counter()
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={
            "config": config.model_dump(),
            "label_names": label_names,
            "initial_state": _on_cpu(initial_state),
            # By reference: Ray Train pickles the loop config into the training function it ships to its
            # controller and workers, and with a reference that pickle stays small at any training-set size.
            "train": ray.put(train),
            "threads": ray_config.worker_threads,
        },
        torch_config=TorchConfig(backend="nccl" if ray_config.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=ray_config.num_workers,
            use_gpu=ray_config.use_gpu,
            resources_per_worker=worker_resources(ray_config),
        ),
        run_config=RunConfig(
            name=f"{TRAINING_RUN_PREFIX}{uuid.uuid4().hex[:12]}",
            storage_path=ray_config.storage_path,
            checkpoint_config=CheckpointConfig(num_to_keep=None),
        ),
    )
    result = trainer.fit()  # raises TrainingFailedError with the worker's error
    scheme = ray_config.storage_path.split("://")[0] + "://" if "://" in ray_config.storage_path else ""
    stored = sorted(result.best_checkpoints, key=lambda pair: pair[1]["step"])
    checkpoints = [read_checkpoint(scheme + checkpoint.path) for checkpoint, _ in stored]
    return TrainingResult(initial_state, checkpoints, config.train.epochs, time.perf_counter() - started,
                          read_training_logits(checkpoints[-1].reference))


def _on_cpu(state: PetState) -> PetState:
    return {name: tensor.cpu() for name, tensor in state.items()}


def worker_resources(ray_config: RayConfig) -> dict[str, float]:
    """What one training worker (or the one-worker task) asks for: its CPUs or a GPU, and the custom resources."""
    device = {"GPU": 1.0} if ray_config.use_gpu else {"CPU": ray_config.worker_cpus}
    return {**device, **ray_config.train_resources}


@ray.remote
def _train_in_task(
    config: dict[str, Any], label_names: list[str], initial_state: PetState, train: EncodedSet, storage_path: str,
    threads: int,
) -> TrainingResult:
    torch.set_num_threads(threads)
    config = GbairConfig.model_validate(config)
    classifier = _kept_classifier(config.model.model_dump_json(), tuple(label_names))
    classifier.load_pet_state(initial_state)
    result = train_classifier(classifier, train, config.train)
    references = store_checkpoints(result.checkpoints, storage_path, TRAINING_RUN_PREFIX)
    checkpoints = [
        StoredCheckpoint(c.step, c.epoch, c.learning_rate, _on_cpu(c.state), reference)
        for c, reference in zip(result.checkpoints, references)
    ]
    return dataclasses.replace(result, initial_state=initial_state, checkpoints=checkpoints)


@ray.remote
def _build_in_task(model: str, label_names: list[str]) -> None:
    _kept_classifier(model, tuple(label_names))


@functools.lru_cache(maxsize=1)
def _kept_classifier(model: str, label_names: tuple[str, ...]) -> PetClassifier:
    """The last model a task in this process trained: a round loads its own initial state into it."""
    return PetClassifier.build(ModelConfig.model_validate_json(model), list(label_names)).to(resolve_device("auto"))


def _train_worker(loop: dict[str, Any]) -> None:
    torch.set_num_threads(loop["threads"])
    config = GbairConfig.model_validate(loop["config"])
    context = ray.train.get_context()
    device = ray.train.torch.get_device()
    classifier = PetClassifier.build(config.model, loop["label_names"], seed=config.train.seed).to(device)
    classifier.load_pet_state(loop["initial_state"])
    parallel = DataParallel(context.get_world_rank(), context.get_world_size(), _all_reduce)
    result = train_classifier(classifier, ray.get(loop["train"]), config.train, parallel=parallel)
    for checkpoint in result.checkpoints:
        # Every worker reports (it is a barrier); only rank 0 has something to store, the states being equal.
        metrics = {"step": checkpoint.step, "epoch": checkpoint.epoch, "learning_rate": checkpoint.learning_rate}
        if parallel.rank != 0:
            ray.train.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as local:
            write_checkpoint(checkpoint, Path(local))
            if checkpoint is result.checkpoints[-1]:
                write_training_logits(result.training_logits, Path(local))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(local))


def _all_reduce(gradients: list[torch.Tensor]) -> None:
    for gradient in gradients:
        dist.all_reduce(gradient, op=dist.ReduceOp.SUM)
