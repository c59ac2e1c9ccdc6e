"""The gRPC handlers: each checks who calls, turns the request into calls on the store, the uploads,
the review and the results, and the answers back into messages. Blocking work runs in threads."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import shutil
import uuid
from pathlib import Path

import grpc

from gbair.coordinator import messages, results
from gbair.coordinator.auth import Caller, Tokens
from gbair.coordinator.datasets import DatasetUpload, load_dataset
from gbair.coordinator.jobs import job_data
from gbair.coordinator.errors import REDIS_UNREACHABLE, InvalidArgument, ServiceError
from gbair.coordinator.review import check_decisions, suspects
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store
from gbair.v1 import gbair_pb2 as pb
from gbair.v1 import gbair_pb2_grpc

log = logging.getLogger(__name__)
EXPORT_CHUNK_BYTES = 1024 * 1024
WATCH_BLOCK_MS = 1000
MAX_PAGE_SIZE = 1000
MAX_TOP = 100
MAX_ID_LENGTH = 128


def _status_errors(handler):
    """ServiceErrors end the call with their status, a Redis outage with UNAVAILABLE (the client may
    retry); anything else with INTERNAL, logged."""

    async def abort(context, error: Exception):
        if isinstance(error, ServiceError):
            await context.abort(error.code, error.message)
        if isinstance(error, REDIS_UNREACHABLE):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the job store (Redis) is unreachable; retry later")
        log.exception("unexpected error in %s", handler.__name__)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}")

    if inspect.isasyncgenfunction(handler):
        @functools.wraps(handler)
        async def streaming(self, request, context):
            try:
                async for item in handler(self, request, context):
                    yield item
            except Exception as error:  # noqa: BLE001  (translated into a status above)
                await abort(context, error)
        return streaming

    @functools.wraps(handler)
    async def unary(self, request, context):
        try:
            return await handler(self, request, context)
        except Exception as error:  # noqa: BLE001
            await abort(context, error)
    return unary


def _id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(field, f"is longer than {MAX_ID_LENGTH} characters")
    return value


class GbairServicer(gbair_pb2_grpc.GbairServicer):
    def __init__(self, settings: CoordinatorSettings, store: Store, tokens: Tokens):
        self.settings = settings
        self.store = store
        self.tokens = tokens

    def _caller(self, context) -> Caller:
        return self.tokens.caller(context.invocation_metadata())

    @staticmethod
    async def _call(function, *args):
        return await asyncio.to_thread(function, *args)

    # --- data sets ---------------------------------------------------------------------------------

    @_status_errors
    async def UploadDataset(self, request_iterator, context):
        caller = self._caller(context)
        caller.require_write("upload data sets")
        upload = None
        try:
            async for request in request_iterator:
                part = request.WhichOneof("part")
                if part == "info":
                    if upload is not None:
                        raise InvalidArgument("info", "sent twice; send it once, first")
                    info = request.info
                    upload = DatasetUpload(
                        self.settings.datasets_dir, caller.tenant, info.name, messages.FORMATS.get(info.format, ""),
                        messages.columns(info.columns), self.settings.max_upload_bytes,
                    )
                elif part == "chunk":
                    if upload is None:
                        raise InvalidArgument("info", "must come first, before any chunk")
                    await self._call(upload.add, messages.SPLITS.get(request.chunk.split, ""), request.chunk.data)
                else:
                    raise InvalidArgument("part", "each message holds info or a chunk")
            if upload is None:
                raise InvalidArgument("info", "the upload was empty")
            record = await self._call(upload.finish)
            await self._call(self.store.add_dataset, record)
        except BaseException:
            if upload is not None:
                upload.discard()
            raise
        return messages.dataset(record)

    @_status_errors
    async def ListDatasets(self, request, context):
        caller = self._caller(context)
        records = await self._call(self.store.datasets, caller.tenant)
        return pb.ListDatasetsResponse(datasets=[messages.dataset(r) for r in records])

    # --- jobs --------------------------------------------------------------------------------------

    @_status_errors
    async def SubmitJob(self, request, context):
        caller = self._caller(context)
        caller.require_write("submit jobs")
        request_id = _id("request_id", request.request_id)
        spec = messages.spec(request.spec)
        spec.config(self.settings.job_defaults, self.settings.models)
        dataset = await self._call(self.store.dataset, caller.tenant, spec.dataset_id)
        # Loading checks the sizes against the data before the job is queued.
        await self._call(load_dataset, dataset, spec.train_size, spec.val_size)
        job, _ = await self._call(
            self.store.create_job, uuid.uuid4().hex[:16], caller.tenant, request_id, spec, self.settings.max_queued_jobs
        )
        return messages.job(job)

    @_status_errors
    async def GetJob(self, request, context):
        caller = self._caller(context)
        return messages.job(await self._call(self.store.job, caller.tenant, _id("job_id", request.job_id)))

    @_status_errors
    async def ListJobs(self, request, context):
        caller = self._caller(context)
        return pb.ListJobsResponse(jobs=[messages.job(j) for j in await self._call(self.store.jobs, caller.tenant)])

    @_status_errors
    async def CancelJob(self, request, context):
        caller = self._caller(context)
        caller.require_write("cancel jobs")
        return messages.job(await self._call(self.store.request_cancel, caller.tenant, _id("job_id", request.job_id)))

    @_status_errors
    async def WatchJob(self, request, context):
        caller = self._caller(context)
        job_id = _id("job_id", request.job_id)
        await self._call(self.store.job, caller.tenant, job_id)
        after = "0"
        while True:
            events = await self._call(self.store.events, job_id, after, WATCH_BLOCK_MS)
            for after, event in events:
                yield messages.event(job_id, event)
                if event.status.terminal:
                    return
            if not events and (await self._call(self.store.job, caller.tenant, job_id)).status.terminal:
                return

    # --- review ------------------------------------------------------------------------------------

    @_status_errors
    async def ListSuspects(self, request, context):
        caller = self._caller(context)
        job = await self._call(self.store.job, caller.tenant, _id("job_id", request.job_id))
        page_size = request.page_size or 100
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
        start = _page_offset(request.page_token)
        rows = await self._call(self._suspects, job) if job.state else []
        page = rows[start : start + page_size]
        following = start + page_size
        return pb.ListSuspectsResponse(
            suspects=[messages.suspect(r) for r in page],
            next_page_token=str(following) if following < len(rows) else "",
            total=len(rows),
        )

    def _suspects(self, job):
        data = job_data(self.store, self.settings, job)
        return suspects(job.state, data.splits.train, self.store.reviews(job.job_id))

    @_status_errors
    async def ReviewSuspects(self, request, context):
        caller = self._caller(context)
        caller.require_write("review suspects")
        job = await self._call(self.store.job, caller.tenant, _id("job_id", request.job_id))
        if not request.decisions:
            raise InvalidArgument("decisions", "give at least one decision")
        decisions = []
        for k, message in enumerate(request.decisions):
            value = messages.decision(message)
            if value is None:
                raise InvalidArgument(f"decisions[{k}].decision", "choose ACCEPT, REJECT or SET_LABEL")
            decisions.append((_id(f"decisions[{k}].example_id", message.example_id), value))
        state = results.finished_rounds(job)
        data = await self._call(results.job_data, self.store, self.settings, job)
        check_decisions(state, data.splits.train, decisions)
        await self._call(self.store.add_reviews, job.job_id, dict(decisions))
        return pb.ReviewSuspectsResponse(recorded=len(decisions))

    @_status_errors
    async def ExplainExample(self, request, context):
        caller = self._caller(context)
        job = await self._call(self.store.job, caller.tenant, _id("job_id", request.job_id))
        example_id = _id("example_id", request.example_id)
        top = request.top or 10
        if not 1 <= top <= MAX_TOP:
            raise InvalidArgument("top", f"must be between 1 and {MAX_TOP}")
        round_index = request.round if request.HasField("round") else None
        explained = await self._call(results.explain, self.store, self.settings, job, example_id, round_index, top)
        return pb.Explanation(
            example_id=example_id, round=explained.round,
            proponents=messages.influences(explained.explanation.proponents, explained.train_set),
            opponents=messages.influences(explained.explanation.opponents, explained.train_set),
        )

    # --- export ------------------------------------------------------------------------------------

    @_status_errors
    async def ExportCleanedDataset(self, request, context):
        caller = self._caller(context)
        job = await self._call(self.store.job, caller.tenant, _id("job_id", request.job_id))
        path = await self._call(results.export_cleaned, self.store, self.settings, job)
        try:
            async for chunk in _file_chunks(path, path.name):
                yield chunk
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)

    @_status_errors
    async def ExportAdapter(self, request, context):
        caller = self._caller(context)
        job = await self._call(self.store.job, caller.tenant, _id("job_id", request.job_id))
        folder, files = results.adapter_files(self.settings, job)
        for path in files:
            async for chunk in _file_chunks(path, path.relative_to(folder).as_posix()):
                yield chunk


def _page_offset(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit() or len(token) > 9:
        raise InvalidArgument("page_token", "is not a token this server gave out")
    return int(token)


async def _file_chunks(path: Path, name: str):
    data = await asyncio.to_thread(path.read_bytes)
    for start in range(0, max(len(data), 1), EXPORT_CHUNK_BYTES):
        yield pb.FileChunk(path=name, data=data[start : start + EXPORT_CHUNK_BYTES])

