"""The job queue's workers: at most `max_concurrent_jobs` jobs run at once, each in its own thread and
each leased to this coordinator, its lease renewed by heartbeats every third of its TTL. Jobs whose
coordinator stopped renewing (killed, or cut off from Redis for longer than a lease) go back to the
head of the queue, at start-up and at every heartbeat. No Redis error ends a worker: it waits and goes on."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from gbair.coordinator.errors import REDIS_UNREACHABLE
from gbair.coordinator.jobs import JobRunner

log = logging.getLogger(__name__)
POLL_S = 0.5


class Scheduler:
    def __init__(self, runner: JobRunner, max_concurrent: int, lease_ttl_s: float):
        self.runner = runner
        self.max_concurrent = max_concurrent
        self.heartbeat_s = lease_ttl_s / 3
        # Neither takes threads from the pool that serves RPCs. The short Redis calls (claims,
        # heartbeats, requeues) share one thread, so a running job never waits for a free one.
        self._job_threads = ThreadPoolExecutor(max_concurrent, thread_name_prefix="gbair-job")
        self._redis_thread = ThreadPoolExecutor(1, thread_name_prefix="gbair-scheduler")
        self._lease_lost: dict[str, threading.Event] = {}
        """The jobs running here, each with the flag its heartbeat sets when the lease is lost."""
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        await self._requeue_expired()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.max_concurrent)]
        self._tasks.append(asyncio.create_task(self._heartbeats()))

    async def _work(self) -> None:
        while not self.runner.stopping.is_set():
            try:
                job_id = await self._redis(self.runner.store.take_next)
                if job_id is None:
                    await asyncio.sleep(POLL_S)
                else:
                    await self._run(job_id)
            except REDIS_UNREACHABLE:
                await asyncio.sleep(POLL_S)  # the watchdog logs the outage
            except Exception:  # a bug must not end the worker
                log.exception("scheduler worker error; it goes on")
                await asyncio.sleep(POLL_S)

    async def _run(self, job_id: str) -> None:
        self._lease_lost[job_id] = threading.Event()
        try:
            await asyncio.get_running_loop().run_in_executor(self._job_threads, self.runner.run, job_id, self._lease_lost[job_id])
        finally:
            del self._lease_lost[job_id]

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                for job_id, lost in list(self._lease_lost.items()):
                    if not await self._redis(self.runner.store.renew_lease, job_id):
                        lost.set()
                await self._requeue_expired()
            except REDIS_UNREACHABLE:
                pass  # the watchdog reports the outage; leases are renewed at the first beat after it
            except Exception:  # a bug must not stop the heartbeats, or every lease would expire
                log.exception("heartbeat error; it goes on")

    async def _requeue_expired(self) -> None:
        resumed = await self._redis(self.runner.store.requeue_interrupted)
        if resumed:
            log.info("requeued jobs whose lease expired: %s", ", ".join(resumed))

    async def _redis(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._redis_thread, function, *args)

    async def stop(self) -> None:
        """Running jobs stop at their next progress report, give up their lease and stay queued for the
        next start."""
        self.runner.stopping.set()
        workers, heartbeats = self._tasks[:-1], self._tasks[-1]
        await asyncio.gather(*workers, return_exceptions=True)
        heartbeats.cancel()
        await asyncio.gather(heartbeats, return_exceptions=True)
        self._job_threads.shutdown(wait=True)
        self._redis_thread.shutdown(wait=True)
