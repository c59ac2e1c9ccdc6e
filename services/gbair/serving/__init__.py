"""The influence service: a Ray Serve deployment that scores shards of a training set, and the driver that
splits a training set into shards, sends them to the replicas concurrently and gathers the results."""

from gbair.serving.driver import ShardedScoring, deploy
from gbair.serving.shards import ShardRequest, ShardRequestError

__all__ = ["ShardRequest", "ShardRequestError", "ShardedScoring", "deploy"]
