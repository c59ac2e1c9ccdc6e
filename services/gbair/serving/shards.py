"""What one scoring request carries and returns, how a training set is cut into shards and put back.

A request refers to the per-checkpoint gradients of every query (the misclassified validation examples),
not only their sum G_c: tracin-class-loss, tracin-class, fused and vote need g(z).g(v) for each query, and
the sum is one column-sum away. The gradients are the same for every shard, so they lie once in Ray's
object store and a request carries their ObjectRef; the shard's own examples travel in the request. The
answer is the shard's slice of core's InfluenceStatistics, so the gathered statistics give every scoring
method exactly what the single-process run gives it.
"""

from __future__ import annotations

import heapq
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
    """Positions of each shard, the heaviest shard first: whole batches exactly as core's
    training_statistics forms them over the full set, so every example is scored in the same padded batch as
    in a single-process run and the gathered statistics match it to the last bit on the same kernels.

    The shards cost about the same (see `deal`), so that the replicas finish together. A shard keeps its
    batches in the length-sorted order, so its examples, sorted by length again inside the replica, fall back
    into these same batches (the one short batch, the last, is the last of its shard)."""
    padded = [(batch.positions.tolist(), batch.input_ids.numel()) for batch in train.batches(batch_size)]
    if not padded:
        return []
    num_shards = -(-len(padded) // max(1, shard_size // batch_size))
    shards = deal([tokens for _, tokens in padded], num_shards)
    return [sum((padded[b][0] for b in sorted(shard)), []) for shard in shards]


def deal(costs: Sequence[int], num_shards: int) -> list[list[int]]:
    """Indices of `costs` in `num_shards` groups of equal size (give or take one) and about equal sums, the
    heaviest group first.

    A batch costs a fixed part (its per-example gradient products) plus a part that grows with its padded
    tokens, `costs`. Equal counts even the fixed part. The items are dealt from the costliest down, each to
    the group with room whose sum is lowest; then, while one exists, a swap between the heaviest and the
    lightest group that narrows their gap is made (each swap lowers the sum of squared group sums, so this
    ends)."""
    room = -(-len(costs) // num_shards)
    full_groups_left = len(costs) - (room - 1) * num_shards  # groups that take `room` items; the rest one fewer
    groups: list[list[int]] = [[] for _ in range(num_shards)]
    sums = [0] * num_shards
    open_groups = [(0, g) for g in range(num_shards)]  # a heap of (sum, group) over the groups with room
    for item in sorted(range(len(costs)), key=lambda i: costs[i], reverse=True):
        _, group = heapq.heappop(open_groups)
        while len(groups[group]) == room - 1 and not full_groups_left:
            _, group = heapq.heappop(open_groups)
        groups[group].append(item)
        sums[group] += costs[item]
        if len(groups[group]) == room:
            full_groups_left -= 1
        else:
            heapq.heappush(open_groups, (sums[group], group))
    while True:
        heavy, light = max(range(num_shards), key=sums.__getitem__), min(range(num_shards), key=sums.__getitem__)
        gap = sums[heavy] - sums[light]
        swaps = [(h, l) for h in groups[heavy] for l in groups[light] if 0 < costs[h] - costs[l] < gap]
        if not swaps:
            break
        h, l = min(swaps, key=lambda pair: abs(gap - 2 * (costs[pair[0]] - costs[pair[1]])))
        groups[heavy][groups[heavy].index(h)], groups[light][groups[light].index(l)] = l, h
        moved = costs[h] - costs[l]
        sums[heavy] -= moved
        sums[light] += moved
    return [groups[g] for g in sorted(range(num_shards), key=sums.__getitem__, reverse=True)]


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
        train_margins=torch.cat([part.train_margins for part in parts], dim=1)[:, inverse],
        final_logits=torch.cat([part.final_logits for part in parts])[inverse],
    )
