"""Per-tenant caps on calls that hold resources while they run: a call over its tenant's cap is refused
with RESOURCE_EXHAUSTED at once rather than queued, so one tenant cannot fill the server's queues."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from gbair.coordinator.errors import ResourceExhausted


class TenantSlots:
    """At most `limit` calls of one kind per tenant at once. Used from the event loop only, so the
    counts need no lock."""

    def __init__(self, kind: str, limit: int, setting: str):
        self.kind = kind
        self.limit = limit
        self.setting = setting
        self._held: Counter[str] = Counter()

    @contextmanager
    def hold(self, tenant: str) -> Iterator[None]:
        if self._held[tenant] >= self.limit:
            raise ResourceExhausted(
                f"tenant '{tenant}' already has {self.limit} {self.kind} running at once (server setting "
                f"{self.setting}); wait for one to end, then retry"
            )
        self._held[tenant] += 1
        try:
            yield
        finally:
            self._held[tenant] -= 1
            if not self._held[tenant]:
                del self._held[tenant]
