"""What one scoring request carries and returns, how a training set is cut into shards and put back.

A request refers to the per-checkpoint gradients of every query (the misclassified validation examples),
not only their sum G_c: tracin-class-loss, tracin-class, fused and vote need g(z).g(v) for each query, and
the sum is one column-sum away. The gradients are the same for every shard, so they lie once in Ray's
object store and a request carries their ObjectRef; the shard's own examples travel in the request. The
answer is the shard's slice of core's InfluenceStatistics, so the gathered statistics give every scoring
method exactly what the single-process run gives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from ray import ObjectRef

from gbair.core.config import ModelConfig
from gbair.core.influence import InfluenceStatistics, QueryGradients
from gbair.core.model.inputs import EncodedSet


class ShardRequestError(ValueError):
    """A request that cannot be scored as sent; resending it will not help."""


@dataclass(frozen=True)
class ShardRequest:
    model: ModelConfig
    label_names: list[str]
    checkpoints: list[str]
    """References to checkpoints in shared storage (gbair.serving.checkpoints)."""
    queries: ObjectRef
    """The query gradients (QueryGradients) in the object store, shared by every shard of a scoring."""
    shard: EncodedSet
    batch_size: int = 64

    def validate(self, queries: QueryGradients, num_trainable: int) -> None:
        """Raise ShardRequestError naming what is wrong, before any work; `queries` is what self.queries
        refers to."""
        problems = []
        if len(self.shard) == 0:
            problems.append("the shard has no training examples")
        if len(self.shard.token_ids) != len(self.shard) or self.shard.labels.shape != (len(self.shard),):
            problems.append("the shard's ids, token ids and labels differ in length")
        if any(not tokens for tokens in self.shard.token_ids):
            problems.append("a training example has no tokens")
        labels = torch.cat([self.shard.labels, queries.labels]) if len(self.shard) else queries.labels
        if labels.numel() and (labels.min() < 0 or labels.max() >= len(self.label_names)):
            problems.append(f"labels must lie in 0..{len(self.label_names) - 1}")
        if not self.checkpoints:
            problems.append("no checkpoint references")
        gradients = queries.gradients
        expected = (len(self.checkpoints), queries.labels.numel(), num_trainable)
        if gradients.dim() != 3 or tuple(gradients.shape) != expected:
            problems.append(
                f"query gradients have shape {tuple(gradients.shape)}; expected (checkpoints, queries, "
                f"PET parameters) = {expected}"
            )
        if queries.learning_rates.shape != (len(self.checkpoints),):
            problems.append("one learning rate per checkpoint is needed")
        if self.batch_size < 1:
            problems.append("batch_size must be at least 1")
        if problems:
            raise ShardRequestError("bad shard request: " + "; ".join(problems))


def split(train: EncodedSet, shard_size: int, batch_size: int) -> list[list[int]]:
    """Positions of each shard: whole batches exactly as core's training_statistics forms them over the full
    set, so every example is scored in the same padded batch as in a single-process run and the gathered
    statistics match it to the last bit on the same kernels.

    The batches run from the shortest texts to the longest, so shard k takes batches k, k + S, k + 2S, ...
    of the S shards: every shard gets short and long batches alike and the replicas finish together. A
    shard's examples, sorted by length again inside the replica, fall back into these same batches (the
    one short batch, the last, is the last of its shard)."""
    batches = [batch.positions.tolist() for batch in train.batches(batch_size)]
    per_shard = max(1, shard_size // batch_size)
    num_shards = -(-len(batches) // per_shard)
    return [sum(batches[shard::num_shards], []) for shard in range(num_shards)]


def gather(parts: Sequence[InfluenceStatistics], positions: Sequence[Sequence[int]], num_train: int) -> InfluenceStatistics:
    """One set of statistics in training-set order from the shards' parts: training axes scattered back to
    `positions`, query axes shared."""
    order = torch.tensor([p for shard in positions for p in shard], dtype=torch.long)
    if sorted(order.tolist()) != list(range(num_train)):
        raise ValueError("the shards do not cover the training set exactly once")
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(num_train)
    ids = [i for part in parts for i in part.train_ids]
    first = parts[0]
    return InfluenceStatistics(
        train_ids=[ids[i] for i in inverse.tolist()],
        train_labels=torch.cat([part.train_labels for part in parts])[inverse],
        query_labels=first.query_labels,
        learning_rates=first.learning_rates,
        dots=torch.cat([part.dots for part in parts], dim=1)[:, inverse],
        train_sq_norms=torch.cat([part.train_sq_norms for part in parts], dim=1)[:, inverse],
        query_sq_norms=first.query_sq_norms,
        train_losses=torch.cat([part.train_losses for part in parts], dim=1)[:, inverse],
        final_logits=torch.cat([part.final_logits for part in parts])[inverse],
    )
