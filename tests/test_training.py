"""Prompt-tuning keeps the checkpoints and learning rates TracIn needs."""

import pytest
import torch

from conftest import tiny_classifier
from gbair.core.config import TrainConfig
from gbair.core.data import TextDataset
from gbair.core.evaluation import accuracy, predict_probabilities
from gbair.core.model import encode
from gbair.core.training import checkpoint_steps, train_classifier

POSITIVE = ["good", "great", "superb", "lovely", "fine"]
NEGATIVE = ["bad", "awful", "poor", "dull", "worse"]


def separable(size: int, prefix: str = "s") -> TextDataset:
    texts, labels = [], []
    for i in range(size):
        words = POSITIVE if i % 2 else NEGATIVE
        texts.append(" ".join(words[(i + k) % 5] for k in range(1 + i % 3)))
        labels.append(i % 2)
    return TextDataset([f"{prefix}{i}" for i in range(size)], texts, labels, ["negative", "positive"])


@pytest.mark.parametrize(
    ("steps", "per_epoch", "expected"), [(10, 1, {10}), (10, 2, {5, 10}), (3, 5, {1, 2, 3}), (7, 3, {3, 5, 7})]
)
def test_checkpoint_steps_end_every_epoch(steps, per_epoch, expected):
    assert checkpoint_steps(steps, per_epoch) == expected


def test_training_learns_and_records_checkpoints(minilm_tokenizer):
    classifier = tiny_classifier("encoder", minilm_tokenizer, dtype=torch.float32)
    train = encode(classifier, separable(40))
    before = accuracy(predict_probabilities(classifier, train), train.labels)
    result = train_classifier(classifier, train, TrainConfig(epochs=6, batch_size=8, learning_rate=0.03, checkpoints_per_epoch=2))
    assert [c.step for c in result.checkpoints] == [3, 5, 8, 10, 13, 15, 18, 20, 23, 25, 28, 30]
    assert [c.epoch for c in result.checkpoints][:2] == [0.6, 1.0]
    assert all(c.learning_rate == 0.03 for c in result.checkpoints)
    assert not torch.equal(result.initial_state["prompt"], result.final_state["prompt"])
    after = accuracy(predict_probabilities(classifier, train), train.labels)
    assert after == 1.0 and after > before


def test_training_is_reproducible_and_touches_only_pet_parameters(minilm_tokenizer):
    states = []
    for _ in range(2):
        classifier = tiny_classifier("causal-lm", minilm_tokenizer, dtype=torch.float32)
        frozen = {n: p.clone() for n, p in classifier.peft_model.get_base_model().named_parameters()}
        train = encode(classifier, separable(12))
        states.append(train_classifier(classifier, train, TrainConfig(epochs=2, batch_size=4, seed=7)).final_state)
        for name, parameter in classifier.peft_model.get_base_model().named_parameters():
            assert torch.equal(parameter, frozen[name]), name
    assert torch.equal(states[0]["prompt"], states[1]["prompt"])
