"""Everything the coordinator keeps in Redis, and the only module that knows the key names.

Keys (all under the configured prefix P):
  P:dataset:<id>                 hash: record (DatasetRecord JSON)
  P:tenant:<t>:datasets          sorted set of data set ids by creation time
  P:job:<id>                     hash: meta, status, error, updated_at, state, trained_round, cancel, report
  P:job:<id>:events              stream of JobEvent JSON (WatchJob reads it)
  P:job:<id>:reviews             hash: example id -> ReviewDecision JSON
  P:tenant:<t>:jobs              sorted set of job ids by creation time
  P:tenant:<t>:active            set of the tenant's queued or running jobs
  P:tenant:<t>:request:<rid>     the job id a client request id made (idempotent submit and rerun)
  P:queue                        list of queued job ids, next first
  P:running                      list of jobs taken from the queue; put back when their lease expires
  P:job:<id>:lease               the id of the coordinator running the job, with a TTL its heartbeats renew

Writes that must happen together are Lua scripts (Redis runs a script whole, and its AOF holds it as
one MULTI/EXEC block, which a truncated file drops whole) or transactions fenced by the job's lease.
The scripts build lease keys from job ids, so the store needs one Redis server, not a Redis Cluster.
"""

from __future__ import annotations

import json
import secrets
import time

import redis
import redis.asyncio.retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from gbair.core.recovery_state import RecoveryState
from gbair.coordinator.errors import FailedPrecondition, InvalidArgument, LeaseLost, NotFound, ResourceExhausted
from gbair.coordinator.records import DatasetRecord, JobEvent, JobRecord, JobStatus, ReviewDecision, now
from gbair.coordinator.settings import LEASE_TTL_S, REDIS_RETRIES
from gbair.coordinator.spec import JobSpec

EVENTS_KEPT = 10_000
RETRY_BASE_S = 0.05
RETRY_CAP_S = 1.0
SOCKET_TIMEOUT_S = 10.0
"""Longer than any blocking read (XREAD in WatchJob) and short enough that a hung Redis is noticed."""

def retrying_client_options(retry: type[Retry] | type[redis.asyncio.retry.Retry], retries: int) -> dict:
    """Options of a Redis client, sync or asyncio (`retry` is that library's Retry class), that retries a
    command through short outages with exponential backoff and reconnects after a Redis restart."""
    return {
        "decode_responses": True, "health_check_interval": 30,
        "socket_timeout": SOCKET_TIMEOUT_S, "socket_connect_timeout": SOCKET_TIMEOUT_S,
        "retry": retry(ExponentialWithJitterBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S), retries),
        "retry_on_error": [redis.BusyLoadingError, redis.ConnectionError, redis.TimeoutError],
    }


# Submit: the request id, the data set, the tenant's quota and the new job are checked and written in one
# step, so a retry sees either nothing or the whole job, concurrent submits cannot pass the quota together,
# and a data set deleted meanwhile (delete_dataset watches the active set) cannot get a job. A rerun
# passes its new data set's record (ARGV[9], else empty), written in the same step: a retry or a
# concurrent rerun with the request id finds the job and its data set both, or neither.
_CREATE_JOB = """
local existing = redis.call('GET', KEYS[1])
if existing then return {'existing', existing} end
local new_dataset = ARGV[9]
if new_dataset == '' and redis.call('EXISTS', KEYS[7]) == 0 then return {'no-dataset', ''} end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[2]) then return {'full', ''} end
if new_dataset ~= '' then
  redis.call('HSET', KEYS[7], 'record', new_dataset)
  redis.call('ZADD', KEYS[8], ARGV[6], ARGV[10])
end
redis.call('HSET', KEYS[3], 'meta', ARGV[3], 'status', ARGV[4], 'updated_at', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[5], ARGV[1])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], '*', 'event', ARGV[7])
redis.call('SET', KEYS[1], ARGV[1])
return {'created', ARGV[1]}
"""
# Taking a job and leasing it are one step: a job in the running list without a lease is abandoned.
_CLAIM_NEXT = """
local job = redis.call('LPOP', KEYS[1])
if not job then return false end
redis.call('RPUSH', KEYS[2], job)
redis.call('SET', ARGV[1] .. job .. ':lease', ARGV[2], 'PX', ARGV[3])
return job
"""
# Running jobs whose lease expired go back to the head of the queue, in the order they were taken.
_REQUEUE_EXPIRED = """
local running = redis.call('LRANGE', KEYS[1], 0, -1)
local moved = {}
for i = #running, 1, -1 do
  local job = running[i]
  if redis.call('EXISTS', ARGV[1] .. job .. ':lease') == 0 then
    redis.call('LREM', KEYS[1], 1, job)
    redis.call('LPUSH', KEYS[2], job)
    table.insert(moved, job)
  end
end
return moved
"""
# A lease that expired while Redis was away is taken again if no one requeued the job meanwhile.
_RENEW_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or (not holder and redis.call('LPOS', KEYS[2], ARGV[3])) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Store:
    def __init__(self, client: redis.Redis, prefix: str, lease_ttl_s: float = LEASE_TTL_S):
        self.redis = client
        self.prefix = prefix
        self.owner = secrets.token_hex(8)
        """This coordinator process, as its leases name it."""
        self.lease_ttl_ms = int(lease_ttl_s * 1000)
        self._create_job = client.register_script(_CREATE_JOB)
        self._claim_next = client.register_script(_CLAIM_NEXT)
        self._requeue_expired = client.register_script(_REQUEUE_EXPIRED)
        self._renew_lease = client.register_script(_RENEW_LEASE)
        self._release_lease = client.register_script(_RELEASE_LEASE)

    @classmethod
    def connect(cls, url: str, prefix: str, lease_ttl_s: float = LEASE_TTL_S, retries: int = REDIS_RETRIES) -> Store:
        """A client that retries a command through short outages (connection lost, timeout, Redis still
        loading its data) with exponential backoff; longer ones reach the caller as REDIS_UNREACHABLE."""
        client = redis.Redis.from_url(url, **retrying_client_options(Retry, retries))
        client.ping()
        return cls(client, prefix, lease_ttl_s)

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
        """Queue a new job, or return the job this request id already made (False: nothing new).

        One Lua script checks the request id and the quota and writes the job with its request id, so a
        coordinator killed at any point of a submit leaves either no trace or a whole job behind the
        request id, and concurrent submits with one request id all get the one job."""
        outcome, existing_id = self._run_create_job(self.redis, job_id, tenant, request_id, spec, max_active)
        if outcome == "existing":
            existing = self.job(tenant, existing_id)
            if existing.spec != spec:
                raise InvalidArgument("request_id", f"'{request_id}' was already used for job {existing.job_id} with a different spec")
            return existing, False
        return self._created(tenant, job_id, spec, max_active, outcome)

    def create_rerun_job(
        self, job_id: str, tenant: str, request_id: str, spec: JobSpec, parent_job_id: str, dataset: DatasetRecord,
        max_active: int, max_datasets: int, max_dataset_bytes: int,
    ) -> tuple[JobRecord, bool]:
        """As create_job, for a job on `dataset`, a new data set made from job `parent_job_id`'s review: the
        data set is recorded with the job, in the same script, or not at all (False: this request id made
        a job already, and `dataset` was not recorded). The tenant's data set limits are checked in the
        same transaction, as add_dataset_within_limits does."""
        datasets_key = self._key("tenant", tenant, "datasets")

        def create(pipe) -> None:
            self.check_dataset_limits(tenant, dataset.bytes, max_datasets, max_dataset_bytes, client=pipe)
            pipe.multi()
            self._run_create_job(pipe, job_id, tenant, request_id, spec, max_active, parent_job_id, dataset)

        ((outcome, existing_id),) = self.redis.transaction(create, datasets_key)
        if outcome == "existing":
            existing = self.job(tenant, existing_id)
            if existing.parent_job_id != parent_job_id:
                raise InvalidArgument("request_id", f"'{request_id}' was already used for job {existing.job_id}, not a rerun of '{parent_job_id}'")
            return existing, False
        return self._created(tenant, job_id, spec, max_active, outcome)

    def _run_create_job(
        self, client, job_id: str, tenant: str, request_id: str, spec: JobSpec, max_active: int,
        parent_job_id: str = "", new_dataset: DatasetRecord | None = None,
    ):
        """The _CREATE_JOB script on `client` (the Redis client, or a transaction's pipeline)."""
        stamp = now()
        meta = {
            "tenant": tenant, "request_id": request_id, "spec": spec.model_dump(), "created_at": stamp,
            "parent_job_id": parent_job_id,
        }
        event = JobEvent(status=JobStatus.QUEUED, phase="queued")
        return self._create_job(
            keys=[
                self._key("tenant", tenant, "request", request_id), self._key("tenant", tenant, "active"),
                self._key("job", job_id), self._key("tenant", tenant, "jobs"), self._key("queue"),
                self._key("job", job_id, "events"), self._key("dataset", spec.dataset_id),
                self._key("tenant", tenant, "datasets"),
            ],
            args=[
                job_id, max_active, json.dumps(meta), JobStatus.QUEUED.value, stamp, time.time(),
                event.model_dump_json(), EVENTS_KEPT, new_dataset.model_dump_json() if new_dataset else "",
                new_dataset.dataset_id if new_dataset else "",
            ],
            client=client,
        )

    def _created(self, tenant: str, job_id: str, spec: JobSpec, max_active: int, outcome: str) -> tuple[JobRecord, bool]:
        if outcome == "no-dataset":
            raise NotFound(f"no data set '{spec.dataset_id}'")
        if outcome == "full":
            raise ResourceExhausted(f"tenant '{tenant}' already has {max_active} queued or running jobs; wait or cancel one")
        return self.job(tenant, job_id), True

    def job_of_request(self, tenant: str, request_id: str) -> JobRecord | None:
        """The job this request id made, if any."""
        job_id = self.redis.get(self._key("tenant", tenant, "request", request_id))
        return self.job(tenant, job_id) if job_id else None

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
            parent_job_id=meta.get("parent_job_id", ""),
        )

    # --- the queue and a job's steps ---------------------------------------------------------------

    def requeue_interrupted(self) -> list[str]:
        """Running jobs whose coordinator stopped renewing their lease go back to the head of the queue;
        jobs whose lease lives stay with the coordinator that holds it."""
        return self._requeue_expired(keys=[self._key("running"), self._key("queue")], args=[self._key("job", "")])

    def take_next(self) -> str | None:
        """The next queued job id, moved to the running list and leased to this coordinator, or None."""
        return self._claim_next(keys=[self._key("queue"), self._key("running")], args=[self._key("job", ""), self.owner, self.lease_ttl_ms])

    def renew_lease(self, job_id: str) -> bool:
        """False: the lease is lost, another coordinator may run the job now."""
        keys = [self._lease_key(job_id), self._key("running")]
        return bool(self._renew_lease(keys=keys, args=[self.owner, self.lease_ttl_ms, job_id]))

    def release_lease(self, job_id: str) -> None:
        """Leave a paused job to whichever coordinator starts next, without waiting for the lease to expire."""
        self._release_lease(keys=[self._lease_key(job_id)], args=[self.owner])

    def _lease_key(self, job_id: str) -> str:
        return self._key("job", job_id, "lease")

    def mark_running(self, job_id: str) -> None:
        self._leased(job_id, lambda pipe: self._update(
            job_id, {"status": JobStatus.RUNNING.value},
            JobEvent(status=JobStatus.RUNNING, phase="started", message=f"on coordinator {self.owner}"), pipe,
        ))

    def record_trained(self, job_id: str, round_index: int) -> None:
        self._leased(job_id, lambda pipe: self._update(
            job_id, {"trained_round": str(round_index)},
            JobEvent(status=JobStatus.RUNNING, phase="trained", round=round_index, fraction=1.0), pipe,
        ))

    def record_round(self, job_id: str, state: RecoveryState) -> None:
        """A round is finished: its state replaces the last, and its training is no longer pending."""
        report = state.rounds[-1]
        metrics = report.model_dump(
            exclude={"flagged_ids", "flagged_scores", "relabels", "suggested_labels", "flagged_probabilities"}
        )
        metrics["flagged"] = len(report.flagged_ids)

        def write(pipe) -> None:
            pipe.hset(self._key("job", job_id), mapping={"state": state.model_dump_json(), "updated_at": now()})
            pipe.hdel(self._key("job", job_id), "trained_round")
            self._event(pipe, job_id, JobEvent(
                status=JobStatus.RUNNING, phase="round", round=report.round, fraction=1.0, metrics=metrics,
            ))
        self._leased(job_id, write)

    def finish(self, job_id: str, status: JobStatus, message: str = "", report_json: str = "") -> None:
        """The end of a job this coordinator holds the lease of."""
        tenant = self.job(None, job_id).tenant
        self._leased(job_id, lambda pipe: self._finish(pipe, job_id, tenant, status, message, report_json))

    def _finish(self, pipe, job_id: str, tenant: str, status: JobStatus, message: str, report_json: str) -> None:
        fields = {"status": status.value, "error": message if status == JobStatus.FAILED else ""}
        if report_json:
            fields["report"] = report_json
        pipe.srem(self._key("tenant", tenant, "active"), job_id)
        pipe.lrem(self._key("running"), 0, job_id)
        pipe.lrem(self._key("queue"), 0, job_id)
        pipe.delete(self._lease_key(job_id))
        self._update(job_id, fields, JobEvent(status=status, phase=status.value, message=message), pipe)

    def request_cancel(self, tenant: str, job_id: str) -> JobRecord:
        job = self.job(tenant, job_id)
        if job.status.terminal:
            raise FailedPrecondition(f"job '{job_id}' has already {job.status.value}; only queued or running jobs can be cancelled")
        if job.status == JobStatus.QUEUED and self.redis.lrem(self._key("queue"), 0, job_id):
            with self.redis.pipeline() as pipe:
                self._finish(pipe, job_id, tenant, JobStatus.CANCELLED, "cancelled before it started", "")
                pipe.execute()
        else:
            self.redis.hset(self._key("job", job_id), "cancel", "1")
        return self.job(tenant, job_id)

    def _leased(self, job_id: str, write) -> None:
        """`write(pipe)` as one transaction, made only while this coordinator holds the job's lease: a
        coordinator that lost it (to a takeover after its lease expired) can no longer change the job."""
        lease = self._lease_key(job_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(lease)
                    if pipe.get(lease) != self.owner:
                        raise LeaseLost(job_id)
                    pipe.multi()
                    write(pipe)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue  # most likely our own heartbeat renewed the lease meanwhile; look again

    def cancel_requested(self, job_id: str) -> bool:
        return self.redis.hget(self._key("job", job_id), "cancel") == "1"

    def _update(self, job_id: str, fields: dict[str, str], event: JobEvent, pipe) -> None:
        pipe.hset(self._key("job", job_id), mapping={**fields, "updated_at": now()})
        self._event(pipe, job_id, event)

    # --- events ------------------------------------------------------------------------------------

    def add_event(self, job_id: str, event: JobEvent) -> None:
        self._event(self.redis, job_id, event)

    def _event(self, client, job_id: str, event: JobEvent) -> None:
        client.xadd(self._key("job", job_id, "events"), {"event": event.model_dump_json()}, maxlen=EVENTS_KEPT, approximate=True)

    def events(self, job_id: str) -> list[JobEvent]:
        """Every event of the job kept so far (at most EVENTS_KEPT), oldest first."""
        return [JobEvent.model_validate_json(fields["event"]) for _, fields in self.redis.xrange(self._key("job", job_id, "events"))]

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
