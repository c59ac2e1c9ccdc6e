"""Prompt-tune the PET parameters and keep the checkpoints TracIn needs."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gbair.core.config import TrainConfig
from gbair.core.model.inputs import EncodedSet
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

    @property
    def final_state(self) -> PetState:
        return self.checkpoints[-1].state


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
    classifier: PetClassifier, train: EncodedSet, config: TrainConfig, progress: Progress = no_progress
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
    classifier.train()
    step = 0
    for epoch in range(config.epochs):
        order = torch.randperm(len(train), generator=generator).tolist()
        for step_in_epoch, batch in enumerate(train.batches(config.batch_size, order), start=1):
            batch = batch.to(classifier.device)
            logits = classifier(batch.input_ids, batch.attention_mask).logits
            loss = F.cross_entropy(logits, batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
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
    return TrainingResult(initial_state, checkpoints, config.epochs, time.perf_counter() - started)
