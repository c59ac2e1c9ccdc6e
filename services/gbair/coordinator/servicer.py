"""The gRPC handlers: each checks who calls, turns the request into calls on the store, the uploads,
the review and the results, and the answers back into messages.

So that no tenant's load delays another's cheap calls: reads and WatchJob streams go to Redis on the
event loop, holding no thread (one Redis reader per watched job); model work and exports, the heavy
calls, run on their own bounded threads, and each tenant may hold only so many streams and heavy calls
at once (the same quota for its read-only and its write tokens); the remaining blocking work (uploads,
writes) runs on the default thread pool."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from gbair.coordinator import messages, results
from gbair.coordinator.auth import Caller, Tokens
from gbair.coordinator.datasets import DatasetUpload, load_dataset
from gbair.coordinator.jobs import job_data
from gbair.coordinator.errors import REDIS_UNREACHABLE, InvalidArgument, ServiceError
from gbair.coordinator.limits import TenantSlots
from gbair.coordinator.reader import AsyncReader
from gbair.coordinator.rerun import rerun_with_decisions
from gbair.coordinator.retention import remove_job_folder
from gbair.coordinator.review import check_decisions, select, suspects
from gbair.coordinator.backends import Backends
from gbair.coordinator.round_models import RoundModels, load_round_model
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store
from gbair.coordinator.watch import JobFeeds
from gbair.v1 import gbair_pb2 as pb
from gbair.v1 import gbair_pb2_grpc

log = logging.getLogger(__name__)
EXPORT_CHUNK_BYTES = 1024 * 1024
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
    def __init__(self, settings: CoordinatorSettings, store: Store, reader: AsyncReader, tokens: Tokens, backends: Backends):
        self.settings = settings
        self.store = store
        self.reader = reader
        self.tokens = tokens
        self.feeds = JobFeeds(reader)
        self.round_models = RoundModels(
            settings.explain_cache_rounds, functools.partial(load_round_model, explainer=backends.explainer)
        )
        self.streams = TenantSlots("WatchJob streams", settings.max_watch_streams_per_tenant, "max_watch_streams_per_tenant")
        self.heavy_calls = TenantSlots(
            "ExplainExample, export or rerun calls", settings.max_heavy_calls_per_tenant, "max_heavy_calls_per_tenant"
        )
        self._heavy_threads = ThreadPoolExecutor(settings.heavy_workers, thread_name_prefix="gbair-heavy")

    async def close(self) -> None:
        self._heavy_threads.shutdown(wait=False, cancel_futures=True)
        await self.reader.close()

    def _caller(self, context) -> Caller:
        return self.tokens.caller(context.invocation_metadata())

    @staticmethod
    async def _call(function, *args):
        return await asyncio.to_thread(function, *args)

    async def _heavy(self, function, *args):
        """On the heavy threads. A caller that leaves drops work not yet started, and waits for work
        already running, so the tenant's heavy-call slot stays taken until its thread is free."""
        work = self._heavy_threads.submit(function, *args)
        try:
            return await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            if not work.cancel():
                await asyncio.wait([asyncio.wrap_future(work)])
            raise

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
                    # An upload adds at least a byte: a tenant at a limit is refused before it sends the rest.
                    await self._call(
                        self.store.check_dataset_limits, caller.tenant, 1,
                        self.settings.max_datasets_per_tenant, self.settings.max_dataset_bytes_per_tenant,
                    )
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
            await self._call(
                self.store.add_dataset_within_limits, record,
                self.settings.max_datasets_per_tenant, self.settings.max_dataset_bytes_per_tenant,
            )
        except BaseException:
            if upload is not None:
                upload.discard()
            raise
        return messages.dataset(record)

    @_status_errors
    async def ListDatasets(self, request, context):
        caller = self._caller(context)
        records = await self.reader.datasets(caller.tenant)
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
        return messages.job(await self.reader.job(caller.tenant, _id("job_id", request.job_id)))

    @_status_errors
    async def ListJobs(self, request, context):
        caller = self._caller(context)
        page_size = _page_size(request.page_size)
        start = _page_offset(request.page_token)
        jobs, total = await self.reader.jobs_page(caller.tenant, start, page_size)
        following = start + page_size
        return pb.ListJobsResponse(
            # Reports stay out of the list (GetJob has them): many would not fit in one message.
            jobs=[messages.job(j, with_report=False) for j in jobs],
            next_page_token=str(following) if following < total else "",
            total=total,
        )

    @_status_errors
    async def CancelJob(self, request, context):
        caller = self._caller(context)
        caller.require_write("cancel jobs")
        return messages.job(await self._call(self.store.request_cancel, caller.tenant, _id("job_id", request.job_id)))

    @_status_errors
    async def WatchJob(self, request, context):
        caller = self._caller(context)
        job_id = _id("job_id", request.job_id)
        await self.reader.job(caller.tenant, job_id)
        with self.streams.hold(caller.tenant):
            # Closed here, not when collected, so a stream the client drops leaves its job's reader at once.
            async with contextlib.aclosing(self.feeds.events(job_id)) as events:
                async for event in events:
                    yield messages.event(job_id, event)

    # --- review ------------------------------------------------------------------------------------

    @_status_errors
    async def ListSuspects(self, request, context):
        caller = self._caller(context)
        job = await self.reader.job(caller.tenant, _id("job_id", request.job_id))
        page_size = _page_size(request.page_size)
        start = _page_offset(request.page_token)
        query = messages.suspect_query(request)
        rows, label_names = await self._call(self._suspects, job, query)
        page = rows[start : start + page_size]
        following = start + page_size
        return pb.ListSuspectsResponse(
            suspects=[messages.suspect(r) for r in page],
            next_page_token=str(following) if following < len(rows) else "",
            total=len(rows),
            label_names=label_names,
        )

    def _suspects(self, job, query):
        """The suspects matching `query`, in its order, and the data set's label names."""
        data = job_data(self.store, self.settings, job)
        rows = []
        if job.state is not None:
            original_labels = self.store.dataset(job.tenant, job.spec.dataset_id).original_labels
            rows = suspects(job.state, data.splits.train, self.store.reviews(job.job_id), original_labels)
        return select(rows, query, data.splits.label_names), data.splits.label_names

    @_status_errors
    async def ReviewSuspects(self, request, context):
        caller = self._caller(context)
        caller.require_write("review suspects")
        job = await self.reader.job(caller.tenant, _id("job_id", request.job_id))
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
        # The cap is checked before any other work, so a client retrying at the cap costs little.
        with self.heavy_calls.hold(caller.tenant):
            job = await self.reader.job(caller.tenant, _id("job_id", request.job_id))
            example_id = _id("example_id", request.example_id)
            top = request.top or 10
            if not 1 <= top <= MAX_TOP:
                raise InvalidArgument("top", f"must be between 1 and {MAX_TOP}")
            round_index = request.round if request.HasField("round") else None
            against = messages.ranked_set(request.against)
            explained = await self._heavy(
                results.explain, self.store, self.settings, self.round_models, job, example_id, round_index, top, against
            )
        return pb.Explanation(
            example_id=example_id, round=explained.round,
            proponents=messages.influences(explained.explanation.proponents, explained.ranked, explained.predicted_labels),
            opponents=messages.influences(explained.explanation.opponents, explained.ranked, explained.predicted_labels),
        )

    # --- export ------------------------------------------------------------------------------------

    @_status_errors
    async def ExportCleanedDataset(self, request, context):
        caller = self._caller(context)
        with self.heavy_calls.hold(caller.tenant):
            job = await self.reader.job(caller.tenant, _id("job_id", request.job_id))
            path = await self._heavy(results.export_cleaned, self.store, self.settings, job)
            try:
                async for chunk in _file_chunks(path, path.name):
                    yield chunk
            finally:
                shutil.rmtree(path.parent, ignore_errors=True)

    @_status_errors
    async def ExportAdapter(self, request, context):
        caller = self._caller(context)
        with self.heavy_calls.hold(caller.tenant):
            job = await self.reader.job(caller.tenant, _id("job_id", request.job_id))
            folder, files = await self._heavy(results.adapter_files, self.settings, job)
            for path in files:
                async for chunk in _file_chunks(path, path.relative_to(folder).as_posix()):
                    yield chunk

    @_status_errors
    async def RerunWithDecisions(self, request, context):
        caller = self._caller(context)
        caller.require_write("rerun jobs")
        # Writing the reviewed data set loads and writes a whole data set: a heavy call, like an export.
        with self.heavy_calls.hold(caller.tenant):
            parent = await self.reader.job(caller.tenant, _id("job_id", request.job_id))
            request_id = _id("request_id", request.request_id)
            job = await self._heavy(rerun_with_decisions, self.store, self.settings, parent, request_id)
        return messages.job(job)

    # --- deleting ----------------------------------------------------------------------------------

    @_status_errors
    async def DeleteJob(self, request, context):
        caller = self._caller(context)
        caller.require_write("delete jobs")
        job_id = _id("job_id", request.job_id)
        await self._call(self.store.ended_job, caller.tenant, job_id)
        # The folder goes first: were the record gone first, a failed removal would leave files nothing names.
        await self._call(remove_job_folder, self.settings, job_id)
        await self._call(self.store.delete_job, caller.tenant, job_id)
        log.info("tenant %s deleted job %s", caller.tenant, job_id)
        return pb.DeleteJobResponse()

    @_status_errors
    async def DeleteDataset(self, request, context):
        caller = self._caller(context)
        caller.require_write("delete data sets")
        record = await self._call(self.store.delete_dataset, caller.tenant, _id("dataset_id", request.dataset_id))
        await self._call(shutil.rmtree, record.folder, True)
        log.info("tenant %s deleted data set %s", caller.tenant, record.dataset_id)
        return pb.DeleteDatasetResponse()


def _page_size(requested: int) -> int:
    page_size = requested or 100
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
    return page_size


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

