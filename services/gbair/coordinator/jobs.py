"""Running one job round by round, saving each step so that a restarted coordinator goes on from the
last one finished: a trained round is saved to the job folder before it is scored, and a scored round
is recorded in Redis before the next one starts. A Redis outage does not end a job: progress events
are skipped while Redis is away, and a step that cannot be recorded waits for Redis and goes on from
the last step recorded, in the same thread."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gbair.core.artifacts import ADAPTER_DIR, write_artifacts
from gbair.core.config import GbairConfig
from gbair.core.data import DataSplits, corrupt_labels, true_label_names
from gbair.core.recovery import Recovery
from gbair.core.recovery_state import TrainedRound
from gbair.coordinator.backends import Backends
from gbair.coordinator.datasets import load_dataset
from gbair.coordinator.errors import REDIS_UNREACHABLE, LeaseLost, ServiceError
from gbair.coordinator.records import JobEvent, JobRecord, JobStatus
from gbair.coordinator.redis_health import RedisWatchdog
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store

log = logging.getLogger(__name__)
EVENT_INTERVAL_S = 0.5


class JobCancelled(Exception):
    pass


class CoordinatorStopping(Exception):
    """The coordinator is shutting down; the job stays in the running list and resumes at the next start."""


@dataclass(frozen=True)
class JobData:
    """What a job's spec makes of its data set: the same on every (re)start, as it is all seeded."""

    splits: DataSplits
    corrupted_ids: list[str]
    true_labels: dict[str, str]
    """The true label of each corrupted id."""
    config: GbairConfig


def job_data(store: Store, settings: CoordinatorSettings, job: JobRecord) -> JobData:
    spec = job.spec
    config = spec.config(settings.job_defaults, settings.models)
    seed = config.train.seed
    splits = load_dataset(store.dataset(job.tenant, spec.dataset_id), spec.train_size, spec.val_size, seed)
    corrupted_ids: list[str] = []
    true_labels: dict[str, str] = {}
    if spec.corrupt:
        train, corrupted_ids = corrupt_labels(splits.train, spec.corrupt, seed=seed)
        true_labels = true_label_names(splits.train, corrupted_ids)
        splits = dataclasses.replace(splits, train=train)
    return JobData(splits, corrupted_ids, true_labels, config)


def job_folder(settings: CoordinatorSettings, job_id: str) -> Path:
    return settings.jobs_dir / job_id


def trained_round_path(settings: CoordinatorSettings, job_id: str, round_index: int) -> Path:
    return job_folder(settings, job_id) / f"round-{round_index}.pt"


def adapter_folder(settings: CoordinatorSettings, job_id: str) -> Path:
    return job_folder(settings, job_id) / "result" / ADAPTER_DIR


class JobRunner:
    def __init__(
        self, store: Store, settings: CoordinatorSettings, stopping: threading.Event, backends: Backends,
        redis_watchdog: RedisWatchdog,
    ):
        self.store = store
        self.settings = settings
        self.stopping = stopping
        self.backends = backends
        self.redis_watchdog = redis_watchdog

    def run(self, job_id: str, lease_lost: threading.Event) -> None:
        """Run the job this coordinator has leased until it ends, the lease is lost (`lease_lost`, set
        by the scheduler's heartbeats) or the coordinator stops; Redis outages are waited out."""
        while True:
            try:
                self._settle(job_id, lease_lost)
                return
            except REDIS_UNREACHABLE as error:
                log.warning("job %s waits for Redis (%s)", job_id, type(error).__name__)
                if not self.redis_watchdog.wait_until_reachable(self.stopping):
                    return
            except LeaseLost:
                log.warning("job %s: its lease was lost, another coordinator may run it; stopping here", job_id)
                return

    def _settle(self, job_id: str, lease_lost: threading.Event) -> None:
        """Run the job and record how it ended; Redis errors and a lost lease go to the caller."""
        try:
            self._run(job_id, lease_lost)
        except (*REDIS_UNREACHABLE, LeaseLost):
            raise
        except JobCancelled:
            self.store.finish(job_id, JobStatus.CANCELLED, "cancelled by request")
        except CoordinatorStopping:
            self.store.release_lease(job_id)
            log.info("job %s paused for shutdown; it resumes at the next start", job_id)
        except ServiceError as error:
            self.store.finish(job_id, JobStatus.FAILED, error.message)
        except Exception as error:  # a job's failure must not take the coordinator down
            log.exception("job %s failed", job_id)
            self.store.finish(job_id, JobStatus.FAILED, f"{type(error).__name__}: {error}")

    def _run(self, job_id: str, lease_lost: threading.Event) -> None:
        job = self.store.job(None, job_id)
        if job.status.terminal:
            return
        self._check(job_id, lease_lost)
        if job.status == JobStatus.QUEUED:
            self.store.mark_running(job_id)
        else:
            self.store.add_event(job_id, JobEvent(
                status=JobStatus.RUNNING, phase="resumed", round=job.state.next_round if job.state else 0,
                message=f"from the last step recorded, on coordinator {self.store.owner}",
            ))
        data = job_data(self.store, self.settings, job)
        backend = self.backends.for_job(data.config, data.splits.label_names)
        recovery = Recovery(data.splits, data.config, backend=backend)
        job_folder(self.settings, job_id).mkdir(parents=True, exist_ok=True)
        state = job.state or recovery.start(data.corrupted_ids, data.true_labels)
        pending = job.trained_round
        while not state.finished:
            round_index = state.next_round
            progress = _JobProgress(self, job_id, round_index, lease_lost)
            path = trained_round_path(self.settings, job_id, round_index)
            if pending == round_index and path.is_file():
                trained = TrainedRound.load(path)
            else:
                trained = recovery.train_round(state, progress).save_to(path)
                self.store.record_trained(job_id, round_index)
            self._check(job_id, lease_lost)
            state = recovery.finish_round(state, trained, progress)
            self.store.record_round(job_id, state)
            # Recorded: round-R.pt holds every checkpoint's state, all that a resume, the adapter and
            # ExplainExample read, so the backend's copies (on Ray, in its storage) only take disk.
            backend.discard(trained.training)
            pending = None
        best = TrainedRound.load(trained_round_path(self.settings, job_id, state.best_round))
        outcome = recovery.outcome(state, best.model_state)
        write_artifacts(outcome, backend, data.splits, job_folder(self.settings, job_id) / "result")
        self.store.finish(job_id, JobStatus.SUCCEEDED, report_json=outcome.report.model_dump_json())

    def _check(self, job_id: str, lease_lost: threading.Event) -> None:
        self._check_here(job_id, lease_lost)
        if self.store.cancel_requested(job_id):
            raise JobCancelled

    def _check_here(self, job_id: str, lease_lost: threading.Event) -> None:
        """The checks that need no Redis."""
        if self.stopping.is_set():
            raise CoordinatorStopping
        if lease_lost.is_set():
            raise LeaseLost(job_id)


class _JobProgress:
    """Core progress as job events, at most one per phase every EVENT_INTERVAL_S plus each phase's end;
    also where a running job notices a cancel, a lost lease or a shutdown. While Redis is unreachable,
    training goes on without events: only the steps recorded after it need Redis."""

    def __init__(self, runner: JobRunner, job_id: str, round_index: int, lease_lost: threading.Event):
        self.runner = runner
        self.job_id = job_id
        self.round = round_index
        self.lease_lost = lease_lost
        self.last: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last.get(phase, 0.0) < EVENT_INTERVAL_S:
            return
        self.last[phase] = now
        if not self.runner.redis_watchdog.reachable:
            self.runner._check_here(self.job_id, self.lease_lost)
            return
        try:
            self.runner.store.add_event(self.job_id, JobEvent(
                status=JobStatus.RUNNING, phase=phase, round=self.round, fraction=done / total if total else 1.0,
            ))
            self.runner._check(self.job_id, self.lease_lost)
        except REDIS_UNREACHABLE:
            self.runner._check_here(self.job_id, self.lease_lost)
