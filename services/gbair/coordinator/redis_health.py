"""Whether Redis answers, from a small probe every PROBE_INTERVAL_S: the coordinator reports NOT_SERVING
while it does not, logs the outage and the recovery once each, and job threads wait here for it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)
PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 2.0
WAIT_SLICE_S = 0.5


class RedisWatchdog:
    def __init__(self, url: str, on_change: Callable[[bool], Awaitable[None]]):
        # Its own client without retries: the store's client retries with backoff, which would hide an
        # outage from the probe for as long as the retries last.
        self._probe = redis.asyncio.Redis.from_url(
            url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S, retry=Retry(NoBackoff(), 0),
        )
        self._on_change = on_change
        self._reachable = threading.Event()
        self._reachable.set()
        self._lost_at: float | None = None

    async def watch(self) -> None:
        """Probe until cancelled."""
        while True:
            try:
                await self._probe.ping()
            except (redis.RedisError, OSError) as error:  # any failure of a ping means Redis cannot serve
                await self._unreachable(error)
            else:
                await self._answered()
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def close(self) -> None:
        await self._probe.aclose()

    @property
    def reachable(self) -> bool:
        """As last seen, by the probe or by a job's failed call."""
        return self._reachable.is_set()

    def wait_until_reachable(self, stopping: threading.Event) -> bool:
        """Block a job's thread after a Redis error until the probe reaches Redis again (True), or until
        the coordinator stops (False)."""
        self._reachable.clear()
        while not stopping.is_set():
            if self._reachable.wait(WAIT_SLICE_S):
                return True
        return False

    async def _unreachable(self, error: Exception) -> None:
        self._reachable.clear()
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            log.error("Redis is unreachable (%s): calls answer UNAVAILABLE and jobs wait for it", type(error).__name__)
            await self._on_change(False)

    async def _answered(self) -> None:
        self._reachable.set()
        if self._lost_at is not None:
            log.warning("Redis is reachable again after %.1f s; jobs go on", time.monotonic() - self._lost_at)
            self._lost_at = None
            await self._on_change(True)
