"""Turn a text set into token ids once, then into dynamically padded batches. Encoding needs the tokenizer
only: a process that never runs the model (the coordinator of a job on Ray) loads a `TextEncoder`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from transformers import PreTrainedTokenizerBase

from gbair.core.config import ModelConfig
from gbair.core.data.dataset import TextDataset
from gbair.core.model.backbones import load_tokenizer, locate_backbone, resolve_kind
from gbair.core.model.pet import PetClassifier, prepare_tokenizer


@dataclass(frozen=True)
class Batch:
    positions: torch.Tensor
    """Where each row sits in the encoded set."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device) for t in (self.positions, self.input_ids, self.attention_mask, self.labels)))

    def rows(self, rows: Sequence[int]) -> Batch:
        index = torch.tensor(list(rows), dtype=torch.long)
        return Batch(*(t[index] for t in (self.positions, self.input_ids, self.attention_mask, self.labels)))


@dataclass(frozen=True)
class EncodedSet:
    ids: list[str]
    token_ids: list[list[int]]
    labels: torch.Tensor
    pad_id: int

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, positions: Sequence[int]) -> EncodedSet:
        return EncodedSet(
            [self.ids[i] for i in positions],
            [self.token_ids[i] for i in positions],
            self.labels[list(positions)],
            self.pad_id,
        )

    def batches(self, batch_size: int, order: Sequence[int] | None = None) -> Iterator[Batch]:
        """Batches in `order` (default: shortest first, which wastes the least padding)."""
        if order is None:
            order = sorted(range(len(self)), key=lambda i: len(self.token_ids[i]))
        for start in range(0, len(order), batch_size):
            positions = list(order[start : start + batch_size])
            yield self._pad(positions)

    def _pad(self, positions: list[int]) -> Batch:
        width = max(len(self.token_ids[i]) for i in positions)
        input_ids = torch.full((len(positions), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(positions), width), dtype=torch.long)
        for row, i in enumerate(positions):
            tokens = self.token_ids[i]
            input_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            attention_mask[row, : len(tokens)] = 1
        index = torch.tensor(positions, dtype=torch.long)
        return Batch(index, input_ids, attention_mask, self.labels[index])


@dataclass(frozen=True)
class TextEncoder:
    """What encoding reads of a classifier: its tokenizer, its kind and its model settings."""

    tokenizer: PreTrainedTokenizerBase
    kind: str
    config: ModelConfig

    @classmethod
    def load(cls, config: ModelConfig) -> TextEncoder:
        """The tokenizer of `config`'s backbone, without the backbone's weights."""
        location = locate_backbone(config.name_or_path)
        kind = resolve_kind(config, location)
        tokenizer = load_tokenizer(location)
        prepare_tokenizer(tokenizer, kind)
        return cls(tokenizer, kind, config)


def encode(encoder: PetClassifier | TextEncoder, dataset: TextDataset) -> EncodedSet:
    tokenizer, config = encoder.tokenizer, encoder.config
    if encoder.kind == "encoder":
        pairs = dataset.text_pairs if dataset.text_pairs is not None else None
        token_ids = tokenizer(
            dataset.texts, pairs, truncation=True, max_length=config.max_length
        )["input_ids"]
    else:
        # Truncate the text, never the suffix that asks for the label word.
        suffix = tokenizer(config.prompt_suffix, add_special_tokens=False)["input_ids"]
        pairs = dataset.text_pairs or [None] * len(dataset)
        bodies = [text if pair is None else f"{text}\n{pair}" for text, pair in zip(dataset.texts, pairs)]
        body_ids = tokenizer(bodies, truncation=True, max_length=max(1, config.max_length - len(suffix)))["input_ids"]
        token_ids = [ids + suffix for ids in body_ids]
    return EncodedSet(
        ids=list(dataset.ids),
        token_ids=[list(ids) for ids in token_ids],
        labels=torch.tensor(dataset.labels, dtype=torch.long),
        pad_id=tokenizer.pad_token_id,
    )
