"""Job events for WatchJob streams: one Redis reader per watched job, however many streams watch it.
The reader keeps the job's events in memory while anyone watches, so a stream that joins late replays
them from the start, as a fresh read of the Redis stream would; the last watcher to leave stops it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gbair.coordinator.reader import AsyncReader
from gbair.coordinator.records import JobEvent

BLOCK_MS = 1000


class JobFeeds:
    """Used from the event loop only, so the bookkeeping needs no lock."""

    def __init__(self, reader: AsyncReader):
        self.reader = reader
        self._feeds: dict[str, _Feed] = {}

    async def events(self, job_id: str) -> AsyncIterator[JobEvent]:
        """The job's events from its first, ending after a terminal one. The caller checks who may watch."""
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = self._feeds[job_id] = _Feed(self.reader, job_id)
        feed.watchers += 1
        try:
            seen = 0
            while True:
                async with feed.changed:
                    await feed.changed.wait_for(lambda: len(feed.events) > seen or feed.ended)
                for event in feed.events[seen:]:
                    seen += 1
                    yield event
                    if event.status.terminal:
                        return
                if feed.ended and seen == len(feed.events):
                    if feed.error is not None:
                        raise feed.error
                    return
        finally:
            feed.watchers -= 1
            if feed.watchers == 0:
                del self._feeds[job_id]
                feed.stop()


class _Feed:
    def __init__(self, reader: AsyncReader, job_id: str):
        self.reader = reader
        self.job_id = job_id
        self.events: list[JobEvent] = []
        self.ended = False
        self.error: Exception | None = None
        self.watchers = 0
        self.changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read(), name=f"watch-{job_id}")

    async def _read(self) -> None:
        # Cancelled (the last watcher left): nobody waits, so it just ends.
        try:
            await self._follow()
        except Exception as error:  # noqa: BLE001  (every watcher re-raises it, ending its stream with its status)
            self.error = error
        self.ended = True
        await self._publish([])

    async def _follow(self) -> None:
        after = "0"
        while True:
            entries = await self.reader.events(self.job_id, after, BLOCK_MS)
            if entries:
                after = entries[-1][0]
                await self._publish([event for _, event in entries])
                if any(event.status.terminal for _, event in entries):
                    return
            # A stream may lack the terminal event (trimmed, or the job deleted): the job itself decides.
            elif (await self.reader.job(None, self.job_id)).status.terminal:
                return

    async def _publish(self, events: list[JobEvent]) -> None:
        async with self.changed:
            self.events.extend(events)
            self.changed.notify_all()

    def stop(self) -> None:
        self._task.cancel()
