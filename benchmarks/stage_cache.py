"""A round backend that keeps every training and every influence pass on disk, keyed by its inputs.

A grid cell is hours of CPU made of many such passes (the clean and noisy models, K fold models, every
G-BAIR round). A run stopped mid-cell loses the cell, but not its passes: the rerun takes each finished
pass from the cache and computes only what is left. Training is seeded, so a pass with the same inputs
gives the same result, and the key is a hash of all of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from gbair.core.backend import RoundBackend, TrainingRequest, train_one_after_another
from gbair.core.config import GbairConfig
from gbair.core.influence.statistics import InfluenceStatistics, QueryGradients
from gbair.core.model.inputs import EncodedSet
from gbair.core.model.pet import PetState
from gbair.core.progress import Progress
from gbair.core.training import Checkpoint, TrainingResult


@dataclass
class CachedBackend:
    """Training and influence passes from the cache; every other computation from `inner`."""

    inner: RoundBackend
    folder: Path
    config: GbairConfig
    """Its model and training settings are what the inputs do not show but the result depends on."""
    hits: int = 0
    misses: int = 0

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (while unpickling): no recursion through the line below
            raise AttributeError(name)
        return getattr(self.inner, name)

    def train(self, start: PetState, train: EncodedSet, progress: Progress, seed: int | None = None) -> TrainingResult:
        """Keyed by the training seed in force, so a training at another `seed` is the very pass a backend
        built with that seed would cache."""
        key = self._key("train", start, _encoded(train), seed=seed)
        result = self._load(key)
        if result is None:
            result = self._store(key, self.inner.train(start, train, progress, seed))
        return result

    def train_each(self, requests: Sequence[TrainingRequest], progress: Progress) -> list[TrainingResult]:
        """One after the other, each from the cache where it is there."""
        return train_one_after_another(self, requests, progress)

    def training_statistics(
        self, checkpoints: Sequence[Checkpoint], train: EncodedSet, queries: QueryGradients, progress: Progress
    ) -> InfluenceStatistics:
        key = self._key("statistics", [(c.learning_rate, c.state) for c in checkpoints], _encoded(train),
                        [queries.labels, queries.gradients, queries.learning_rates],
                        [field.name for field in fields(InfluenceStatistics)])
        result = self._load(key)
        if result is None:
            result = self._store(key, self.inner.training_statistics(checkpoints, train, queries, progress))
        return result

    def passes(self) -> dict[str, int]:
        return {"computed": self.misses, "from_cache": self.hits}

    def _key(self, kind: str, *inputs: Any, seed: int | None = None) -> str:
        config = self.config.with_training_seed(seed)
        context = json.dumps([config.model.model_dump(mode="json"), config.train.model_dump(mode="json")], sort_keys=True)
        digest = hashlib.sha256(f"{kind}\0{context}".encode())
        _update(digest, inputs)
        return f"{kind}-{digest.hexdigest()[:32]}"

    def _load(self, key: str) -> Any:
        path = self.folder / f"{key}.pt"
        if not path.exists():
            self.misses += 1
            return None
        self.hits += 1
        return torch.load(path, weights_only=False)

    def _store(self, key: str, result: Any) -> Any:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f"{key}.pt.partial"
        torch.save(result, partial)
        partial.replace(self.folder / f"{key}.pt")  # a pass killed while saving leaves no half-written entry
        return result


def _encoded(data: EncodedSet) -> list[Any]:
    return [repr(data.ids), repr(data.token_ids), data.labels, data.pad_id]


def _update(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    elif isinstance(value, dict):
        for name in sorted(value):
            digest.update(f"K{name}".encode())
            _update(digest, value[name])
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for item in value:
            _update(digest, item)
    else:
        digest.update(f"V{value!r}".encode())
