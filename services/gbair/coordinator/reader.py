"""The servicer's reads from Redis, on redis.asyncio: a call that only reads, or waits for job events,
holds no thread. Key names and record parsing stay the Store's; the job runner keeps the sync Store."""

from __future__ import annotations

import redis.asyncio
import redis.asyncio.retry

from gbair.coordinator.records import DatasetRecord, JobEvent, JobRecord
from gbair.coordinator.store import Store, retrying_client_options


class AsyncReader:
    def __init__(self, url: str, store: Store, retries: int):
        # Retried like the Store's commands, so the first call after a Redis restart reconnects and answers.
        self.redis = redis.asyncio.Redis.from_url(url, **retrying_client_options(redis.asyncio.retry.Retry, retries))
        self.store = store

    async def close(self) -> None:
        await self.redis.aclose()

    async def job(self, tenant: str | None, job_id: str) -> JobRecord:
        """As Store.job: another tenant's job is reported as missing."""
        return Store.job_record(tenant, job_id, await self.redis.hgetall(self.store.job_key(job_id)))

    async def jobs_page(self, tenant: str, start: int, count: int) -> tuple[list[JobRecord], int]:
        """`count` of the tenant's jobs from position `start`, oldest first, and how many there are."""
        jobs_key = self.store.jobs_key(tenant)
        ids = await self.redis.zrange(jobs_key, start, start + count - 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.store.job_key(job_id))
            pipe.zcard(jobs_key)
            *answers, total = await pipe.execute()
        # A job deleted between the two reads is left out, as if the list had been read after it.
        return [Store.job_record(tenant, job_id, fields) for job_id, fields in zip(ids, answers) if fields], total

    async def datasets(self, tenant: str) -> list[DatasetRecord]:
        ids = await self.redis.zrange(self.store.datasets_key(tenant), 0, -1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for dataset_id in ids:
                pipe.hget(self.store.dataset_key(dataset_id), "record")
            answers = await pipe.execute()
        return [Store.dataset_record(tenant, dataset_id, raw) for dataset_id, raw in zip(ids, answers) if raw]

    async def events(self, job_id: str, after: str, block_ms: int) -> list[tuple[str, JobEvent]]:
        """As Store.events: events after stream id `after`, waiting up to `block_ms` for the first."""
        answer = await self.redis.xread({self.store.events_key(job_id): after}, count=500, block=block_ms)
        return Store.event_entries(answer)
