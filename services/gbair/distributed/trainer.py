"""Prompt-tuning on Ray Train: every worker runs core's training loop on its share of each batch, the
gradients are all-reduced (gloo on CPU, nccl on GPU), and rank 0 reports each checkpoint to storage.

With one worker the loop is exactly core's, so the checkpoints equal a single-process run's for the same
seed; with more, each worker takes every world_size-th row of each batch, so the update is still the
mean over the whole batch and only the summation order differs.
"""

from __future__ import annotations

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

from gbair.core.config import GbairConfig
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetClassifier, PetState
from gbair.core.training import DataParallel, TrainingResult, train_classifier
from gbair.distributed.config import RayConfig
from gbair.serving.checkpoints import TRAINING_RUN_PREFIX, read_checkpoint, write_checkpoint


def train_on_ray(
    config: GbairConfig, ray_config: RayConfig, label_names: list[str], initial_state: PetState, train: EncodedSet
) -> TrainingResult:
    """Train from `initial_state` on `train`; the checkpoints come back read from storage."""
    started = time.perf_counter()
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={
            "config": config.model_dump(),
            "label_names": label_names,
            "initial_state": {name: tensor.cpu() for name, tensor in initial_state.items()},
            # By reference: Ray Train pickles the loop config into the training function it ships to its
            # controller and workers. With a reference that pickle stays small at any training-set size;
            # the set is written to the object store once and each worker reads it from its node's store.
            "train": ray.put(train),
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
    return TrainingResult(initial_state, checkpoints, config.train.epochs, time.perf_counter() - started)


def worker_resources(ray_config: RayConfig) -> dict[str, float] | None:
    """None keeps Ray Train's default (one CPU, or one GPU); custom resources are asked for beside it."""
    if not ray_config.train_resources:
        return None
    device = {"GPU": 1.0} if ray_config.use_gpu else {"CPU": 1.0}
    return {**device, **ray_config.train_resources}


def _train_worker(loop: dict[str, Any]) -> None:
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
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(local))


def _all_reduce(gradients: list[torch.Tensor]) -> None:
    for gradient in gradients:
        dist.all_reduce(gradient, op=dist.ReduceOp.SUM)
