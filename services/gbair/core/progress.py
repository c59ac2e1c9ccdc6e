"""How long-running core work reports progress, without knowing who listens (a terminal bar, a gRPC stream)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int) -> None:
        """`done` of `total` units of `phase` are finished."""


def no_progress(phase: str, done: int, total: int) -> None:
    return None
