"""Everything the coordinator keeps in Redis, and the only module that knows the key names.

Keys (all under the configured prefix P):
  P:dataset:<id>                 hash: record (DatasetRecord JSON)
  P:tenant:<t>:datasets          sorted set of data set ids by creation time
  P:job:<id>                     hash: meta, status, error, updated_at, state, trained_round, cancel, report
  P:job:<id>:events              stream of JobEvent JSON (WatchJob reads it)
  P:job:<id>:reviews             hash: example id -> ReviewDecision JSON
  P:tenant:<t>:jobs              sorted set of job ids by creation time
  P:tenant:<t>:active            set of the tenant's queued or running jobs
  P:tenant:<t>:request:<rid>     the job id a client request id made (idempotent submit)
  P:queue                        list of queued job ids, next first
  P:running                      list of jobs taken from the queue; put back at start-up after a crash
"""

from __future__ import annotations

import json
import time

import redis

from gbair.core.recovery_state import RecoveryState
from gbair.coordinator.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from gbair.coordinator.records import DatasetRecord, JobEvent, JobRecord, JobStatus, ReviewDecision, now
from gbair.coordinator.spec import JobSpec

EVENTS_KEPT = 10_000


class Store:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.prefix = prefix

    @classmethod
    def connect(cls, url: str, prefix: str) -> Store:
        client = redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
        client.ping()
        return cls(client, prefix)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- data sets ---------------------------------------------------------------------------------

    def dataset(self, tenant: str, dataset_id: str) -> DatasetRecord:
        return self.dataset_record(tenant, dataset_id, self.redis.hget(self._key("dataset", dataset_id), "record"))

    @staticmethod
    def dataset_record(tenant: str, dataset_id: str, raw: str | None) -> DatasetRecord:
        record = DatasetRecord.model_validate_json(raw) if raw else None
        # Another tenant's data set is reported exactly like a missing one.
        if record is None or record.tenant != tenant:
            raise NotFound(f"no data set '{dataset_id}'")
        return record

    def datasets(self, tenant: str) -> list[DatasetRecord]:
        ids = self.redis.zrange(self._key("tenant", tenant, "datasets"), 0, -1)
        return [self.dataset(tenant, i) for i in ids]

    # --- jobs --------------------------------------------------------------------------------------

    def create_job(self, job_id: str, tenant: str, request_id: str, spec: JobSpec, max_active: int) -> tuple[JobRecord, bool]:
        """Queue a new job, or return the job this request id already made (False: nothing new)."""
        request_key = self._key("tenant", tenant, "request", request_id)
        if not self.redis.set(request_key, job_id, nx=True):
            existing = self.job(tenant, self.redis.get(request_key))
            if existing.spec != spec:
                raise InvalidArgument("request_id", f"'{request_id}' was already used for job {existing.job_id} with a different spec")
            return existing, False
        active_key = self._key("tenant", tenant, "active")
        if self.redis.scard(active_key) >= max_active:
            self.redis.delete(request_key)
            raise ResourceExhausted(f"tenant '{tenant}' already has {max_active} queued or running jobs; wait or cancel one")
        stamp = now()
        meta = {"tenant": tenant, "request_id": request_id, "spec": spec.model_dump(), "created_at": stamp}
        with self.redis.pipeline() as pipe:
            pipe.hset(self._key("job", job_id), mapping={
                "meta": json.dumps(meta), "status": JobStatus.QUEUED.value, "updated_at": stamp,
            })
            pipe.zadd(self._key("tenant", tenant, "jobs"), {job_id: time.time()})
            pipe.sadd(active_key, job_id)
            pipe.rpush(self._key("queue"), job_id)
            self._event(pipe, job_id, JobEvent(status=JobStatus.QUEUED, phase="queued"))
            pipe.execute()
        return self.job(tenant, job_id), True

    def job(self, tenant: str | None, job_id: str) -> JobRecord:
        """The job, if it belongs to `tenant` (None: the coordinator itself, any tenant)."""
        return self.job_record(tenant, job_id, self.redis.hgetall(self._key("job", job_id)))

    @staticmethod
    def job_record(tenant: str | None, job_id: str, fields: dict[str, str]) -> JobRecord:
        if not fields:
            raise NotFound(f"no job '{job_id}'")
        meta = json.loads(fields["meta"])
        if tenant is not None and meta["tenant"] != tenant:
            raise NotFound(f"no job '{job_id}'")
        return JobRecord(
            job_id=job_id,
            tenant=meta["tenant"],
            request_id=meta["request_id"],
            spec=JobSpec.model_validate(meta["spec"]),
            status=JobStatus(fields["status"]),
            error=fields.get("error", ""),
            created_at=meta["created_at"],
            updated_at=fields["updated_at"],
            state=RecoveryState.model_validate_json(fields["state"]) if "state" in fields else None,
            trained_round=int(fields["trained_round"]) if fields.get("trained_round") else None,
            cancel_requested=fields.get("cancel") == "1",
            report_json=fields.get("report", ""),
        )

    # --- the queue and a job's steps ---------------------------------------------------------------

    def requeue_interrupted(self) -> list[str]:
        """Jobs a previous coordinator took and did not finish go back to the head of the queue."""
        moved = []
        while (job_id := self.redis.lmove(self._key("running"), self._key("queue"), "RIGHT", "LEFT")) is not None:
            moved.append(job_id)
        return moved

    def take_next(self, timeout_s: float) -> str | None:
        """The next queued job id, moved to the running list, or None after `timeout_s`."""
        return self.redis.blmove(self._key("queue"), self._key("running"), timeout_s, "LEFT", "RIGHT")

    def mark_running(self, job_id: str) -> None:
        self._update(job_id, {"status": JobStatus.RUNNING.value}, JobEvent(status=JobStatus.RUNNING, phase="started"))

    def record_trained(self, job_id: str, round_index: int) -> None:
        self._update(
            job_id, {"trained_round": str(round_index)},
            JobEvent(status=JobStatus.RUNNING, phase="trained", round=round_index, fraction=1.0),
        )

    def record_round(self, job_id: str, state: RecoveryState) -> None:
        """A round is finished: its state replaces the last, and its training is no longer pending."""
        report = state.rounds[-1]
        metrics = report.model_dump(exclude={"flagged_ids", "flagged_scores", "relabels"})
        metrics["flagged"] = len(report.flagged_ids)
        with self.redis.pipeline() as pipe:
            pipe.hset(self._key("job", job_id), mapping={"state": state.model_dump_json(), "updated_at": now()})
            pipe.hdel(self._key("job", job_id), "trained_round")
            self._event(pipe, job_id, JobEvent(
                status=JobStatus.RUNNING, phase="round", round=report.round, fraction=1.0, metrics=metrics,
            ))
            pipe.execute()

    def finish(self, job_id: str, status: JobStatus, message: str = "", report_json: str = "") -> None:
        fields = {"status": status.value, "error": message if status == JobStatus.FAILED else ""}
        if report_json:
            fields["report"] = report_json
        tenant = self.job(None, job_id).tenant
        with self.redis.pipeline() as pipe:
            pipe.srem(self._key("tenant", tenant, "active"), job_id)
            pipe.lrem(self._key("running"), 0, job_id)
            pipe.lrem(self._key("queue"), 0, job_id)
            self._update(job_id, fields, JobEvent(status=status, phase=status.value, message=message), pipe)
            pipe.execute()

    def request_cancel(self, tenant: str, job_id: str) -> JobRecord:
        job = self.job(tenant, job_id)
        if job.status.terminal:
            raise FailedPrecondition(f"job '{job_id}' has already {job.status.value}; only queued or running jobs can be cancelled")
        if job.status == JobStatus.QUEUED and self.redis.lrem(self._key("queue"), 0, job_id):
            self.finish(job_id, JobStatus.CANCELLED, "cancelled before it started")
        else:
            self.redis.hset(self._key("job", job_id), "cancel", "1")
        return self.job(tenant, job_id)

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(self._key("job", job_id), "cancel") == "1"

    def _update(self, job_id: str, fields: dict[str, str], event: JobEvent, pipe=None) -> None:
        own = pipe is None
        pipe = self.redis.pipeline() if own else pipe
        pipe.hset(self._key("job", job_id), mapping={**fields, "updated_at": now()})
        self._event(pipe, job_id, event)
        if own:
            pipe.execute()

    # --- events ------------------------------------------------------------------------------------

    def add_event(self, job_id: str, event: JobEvent) -> None:
        self._event(self.redis, job_id, event)

    def _event(self, client, job_id: str, event: JobEvent) -> None:
        client.xadd(self._key("job", job_id, "events"), {"event": event.model_dump_json()}, maxlen=EVENTS_KEPT, approximate=True)

    def events(self, job_id: str, after: str, block_ms: int) -> list[tuple[str, JobEvent]]:
        """Events after stream id `after` ('0' for all), waiting up to `block_ms` for the first."""
        return self.event_entries(self.redis.xread({self._key("job", job_id, "events"): after}, count=500, block=block_ms))

    @staticmethod
    def event_entries(answer) -> list[tuple[str, JobEvent]]:
        """An XREAD answer on one job's events as (stream id, event) pairs."""
        return [(event_id, JobEvent.model_validate_json(fields["event"])) for _, entries in answer for event_id, fields in entries]

    # --- key names for the async reader (gbair.coordinator.reader), which reads without threads -----

    def dataset_key(self, dataset_id: str) -> str:
        return self._key("dataset", dataset_id)

    def datasets_key(self, tenant: str) -> str:
        return self._key("tenant", tenant, "datasets")

    def job_key(self, job_id: str) -> str:
        return self._key("job", job_id)

    def jobs_key(self, tenant: str) -> str:
        return self._key("tenant", tenant, "jobs")

    def events_key(self, job_id: str) -> str:
        return self._key("job", job_id, "events")

    # --- review ------------------------------------------------------------------------------------

    def add_reviews(self, job_id: str, decisions: dict[str, ReviewDecision]) -> None:
        if decisions:
            self.redis.hset(self._key("job", job_id, "reviews"), mapping={i: d.model_dump_json() for i, d in decisions.items()})

    def reviews(self, job_id: str) -> dict[str, ReviewDecision]:
        raw = self.redis.hgetall(self._key("job", job_id, "reviews"))
        return {i: ReviewDecision.model_validate_json(value) for i, value in raw.items()}

    # --- paging, limits, deleting ------------------------------------------------------------------

    def check_dataset_limits(self, tenant: str, new_bytes: int, max_count: int, max_bytes: int, client=None) -> None:
        """ResourceExhausted where one more data set of `new_bytes` would pass the tenant's limits."""
        client = client or self.redis
        ids = client.zrange(self._key("tenant", tenant, "datasets"), 0, -1)
        raw = [client.hget(self._key("dataset", i), "record") for i in ids]
        used = sum(DatasetRecord.model_validate_json(r).bytes for r in raw if r)
        if len(ids) >= max_count:
            raise ResourceExhausted(f"tenant '{tenant}' already has {len(ids)} data sets, this server's limit; delete one first")
        if used + new_bytes > max_bytes:
            raise ResourceExhausted(
                f"tenant '{tenant}' would hold {used + new_bytes} bytes of data sets, over this server's limit of "
                f"{max_bytes}; delete a data set first"
            )

    def add_dataset_within_limits(self, record: DatasetRecord, max_count: int, max_bytes: int) -> None:
        """A data set recorded where `check_dataset_limits` passes, checked and written in one transaction, so
        that concurrent uploads cannot pass a limit together."""
        datasets_key = self._key("tenant", record.tenant, "datasets")

        def add(pipe) -> None:
            self.check_dataset_limits(record.tenant, record.bytes, max_count, max_bytes, client=pipe)
            pipe.multi()
            pipe.hset(self._key("dataset", record.dataset_id), "record", record.model_dump_json())
            pipe.zadd(datasets_key, {record.dataset_id: time.time()})

        self.redis.transaction(add, datasets_key)

    def delete_dataset(self, tenant: str, dataset_id: str) -> DatasetRecord:
        """Forget a data set no queued or running job uses (FailedPrecondition naming one that does)."""
        record = self.dataset(tenant, dataset_id)
        active_key = self._key("tenant", tenant, "active")

        def remove(pipe) -> None:
            for job_id in sorted(pipe.smembers(active_key)):
                meta = pipe.hget(self._key("job", job_id), "meta")
                if meta and json.loads(meta)["spec"]["dataset_id"] == dataset_id:
                    raise FailedPrecondition(
                        f"data set '{dataset_id}' is used by job '{job_id}', which has not ended; cancel it or wait"
                    )
            pipe.multi()
            pipe.delete(self._key("dataset", dataset_id))
            pipe.zrem(self._key("tenant", tenant, "datasets"), dataset_id)

        # A job queued meanwhile changes the active set and makes the check run again.
        self.redis.transaction(remove, active_key, self._key("dataset", dataset_id))
        return record

    def ended_job(self, tenant: str | None, job_id: str) -> JobRecord:
        """The job if it has ended; a queued or running one is FailedPrecondition, as it must be cancelled
        before it is deleted."""
        job = self.job(tenant, job_id)
        if not job.status.terminal:
            raise FailedPrecondition(f"job '{job_id}' is {job.status.value}; cancel it first (CancelJob), then delete it")
        return job

    def delete_job(self, tenant: str | None, job_id: str) -> JobRecord:
        """Forget a job that has ended: its record, events, reviews and request id (which may then be used
        again)."""
        job = self.ended_job(tenant, job_id)
        request_key = self._key("tenant", job.tenant, "request", job.request_id)

        def remove(pipe) -> None:
            names_this_job = pipe.get(request_key) == job_id
            pipe.multi()
            pipe.delete(self._key("job", job_id), self._key("job", job_id, "events"), self._key("job", job_id, "reviews"))
            pipe.zrem(self._key("tenant", job.tenant, "jobs"), job_id)
            if names_this_job:
                pipe.delete(request_key)

        self.redis.transaction(remove, request_key)
        return job

    def ended_jobs_updated_before(self, cutoff: str) -> list[JobRecord]:
        """Every tenant's jobs that ended before `cutoff` (an ISO 8601 UTC time, as `now()` writes)."""
        ended = []
        for jobs_key in self.redis.scan_iter(match=self._key("tenant", "*", "jobs"), _type="zset"):
            for job_id in self.redis.zrange(jobs_key, 0, -1):
                try:
                    job = self.job(None, job_id)
                except NotFound:  # deleted meanwhile
                    continue
                if job.status.terminal and job.updated_at < cutoff:
                    ended.append(job)
        return ended
