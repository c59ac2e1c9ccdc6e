"""Prompt-tune the PET parameters and keep the checkpoints TracIn needs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gbair.core.config import TrainConfig
from gbair.core.model.inputs import Batch, EncodedSet
from gbair.core.model.pet import PetClassifier, PetState
from gbair.core.progress import Progress, no_progress


@dataclass(frozen=True)
class Checkpoint:
    step: int
    epoch: float
    learning_rate: float
    """The learning rate in force when the checkpoint was taken: TracIn's weight for it."""
    state: PetState


@dataclass(frozen=True)
class TrainingResult:
    initial_state: PetState
    checkpoints: list[Checkpoint]
    epochs: int
    seconds: float
    training_logits: torch.Tensor | None = None
    """(epochs, N, K): the logits each training example got in the step that trained on it, every epoch
    (training dynamics, for the area under the margin and dataset cartography at no extra forward pass).
    None only in a round saved before the record was kept."""

    @property
    def final_state(self) -> PetState:
        return self.checkpoints[-1].state


@dataclass(frozen=True)
class DataParallel:
    """Data-parallel training over processes that all run the same seeded loop: this process takes every
    `world_size`-th row of each batch from `rank` on, and `sum_across` adds tensors of the same shape up
    over all processes, in place (an all-reduce): the gradients, so that every process applies the same
    update to the same state, and at the end the logits each recorded for its own rows."""

    rank: int
    world_size: int
    sum_across: Callable[[list[torch.Tensor]], None]


SINGLE_PROCESS = DataParallel(rank=0, world_size=1, sum_across=lambda tensors: None)


TRAINING_SEED_STEP = 1000


def training_seeds(seed: int, count: int) -> list[int]:
    """`seed`, then the seeds of `count` - 1 further trainings of the same data, which draw other initial
    states and batch orders. They step by TRAINING_SEED_STEP, clear of the neighbouring seeds a user runs
    whole jobs with."""
    return [seed + TRAINING_SEED_STEP * j for j in range(count)]


def initial_checkpoint(state: PetState) -> Checkpoint:
    """The untrained starting point as a checkpoint of weight 1, for scores that compare against it."""
    return Checkpoint(step=0, epoch=0.0, learning_rate=1.0, state=state)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def checkpoint_steps(steps_per_epoch: int, checkpoints_per_epoch: int) -> set[int]:
    """1-based steps within an epoch after which a checkpoint is taken; the epoch's end is always one."""
    count = min(checkpoints_per_epoch, steps_per_epoch)
    return {math.ceil(k * steps_per_epoch / count) for k in range(1, count + 1)}


def train_classifier(
    classifier: PetClassifier,
    train: EncodedSet,
    config: TrainConfig,
    progress: Progress = no_progress,
    parallel: DataParallel = SINGLE_PROCESS,
) -> TrainingResult:
    started = time.perf_counter()
    parameters = list(classifier.trainable_parameters().values())
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    take_checkpoint_after = checkpoint_steps(steps_per_epoch, config.checkpoints_per_epoch)
    total_steps = steps_per_epoch * config.epochs
    initial_state = classifier.pet_state()
    checkpoints: list[Checkpoint] = []
    # Every row of a batch is trained in exactly one process, so the processes' records, zero elsewhere,
    # add up to the whole record.
    logits = torch.zeros(config.epochs, len(train), len(classifier.label_names))
    classifier.train()
    step = 0
    for epoch in range(config.epochs):
        order = torch.randperm(len(train), generator=generator).tolist()
        for step_in_epoch, batch in enumerate(train.batches(config.batch_size, order), start=1):
            optimizer.zero_grad(set_to_none=True)
            positions, share_logits = _backward(classifier, batch, parallel, parameters)
            logits[epoch, positions] = share_logits
            optimizer.step()
            step += 1
            if step_in_epoch in take_checkpoint_after:
                checkpoints.append(
                    Checkpoint(
                        step=step,
                        epoch=epoch + step_in_epoch / steps_per_epoch,
                        learning_rate=optimizer.param_groups[0]["lr"],
                        state=classifier.pet_state(),
                    )
                )
            progress("train", step, total_steps)
    classifier.eval()
    if parallel.world_size > 1:
        logits = logits.to(classifier.device)  # nccl sums on the GPU only
        parallel.sum_across([logits])
        logits = logits.cpu()
    return TrainingResult(initial_state, checkpoints, config.epochs, time.perf_counter() - started, logits)


def _backward(
    classifier: PetClassifier, batch: Batch, parallel: DataParallel, parameters: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Leave the gradient of the whole batch's mean loss in `parameters`, however its rows are shared out;
    return the training-set positions of this process's rows and their logits."""
    logits = torch.empty(0, len(classifier.label_names))
    share = batch
    if parallel.world_size > 1:
        share = batch.rows(range(parallel.rank, len(batch.positions), parallel.world_size))
    positions = share.positions
    if len(positions):
        share = share.to(classifier.device)
        logits = classifier(share.input_ids, share.attention_mask).logits
        # Weighted by this process's part of the batch so that the sum over processes is the whole batch's
        # mean; with one process the weight is exactly 1 and the loss is bit-for-bit the plain mean.
        loss = F.cross_entropy(logits, share.labels) * (len(share.positions) / len(batch.positions))
        loss.backward()
    if parallel.world_size > 1:
        for parameter in parameters:
            if parameter.grad is None:  # this process had no rows in a short last batch
                parameter.grad = torch.zeros_like(parameter)
        parallel.sum_across([parameter.grad for parameter in parameters])
    return positions, logits.detach().float().cpu()
