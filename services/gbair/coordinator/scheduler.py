"""The job queue's workers: at most `max_concurrent_jobs` jobs run at once, each in its own thread.
At start-up, jobs a killed coordinator left running go back to the head of the queue."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from gbair.coordinator.jobs import JobRunner

log = logging.getLogger(__name__)
POLL_S = 1.0


class Scheduler:
    def __init__(self, runner: JobRunner, max_concurrent: int):
        self.runner = runner
        self.max_concurrent = max_concurrent
        # Two threads per worker: one waits on the queue while the other runs a job, and neither takes
        # threads from the pool that serves RPCs.
        self._threads = ThreadPoolExecutor(2 * max_concurrent, thread_name_prefix="gbair-job")
        self._workers: list[asyncio.Task] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        resumed = await loop.run_in_executor(self._threads, self.runner.store.requeue_interrupted)
        if resumed:
            log.info("resuming interrupted jobs: %s", ", ".join(resumed))
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.max_concurrent)]

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.runner.stopping.is_set():
            job_id = await loop.run_in_executor(self._threads, self.runner.store.take_next, POLL_S)
            if job_id is not None:
                await loop.run_in_executor(self._threads, self.runner.run, job_id)

    async def stop(self) -> None:
        """Running jobs stop at their next progress report and stay queued for the next start."""
        self.runner.stopping.set()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._threads.shutdown(wait=True)
