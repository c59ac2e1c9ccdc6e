"""Removing what the coordinator no longer needs: the folders of jobs that ended longer ago than
`job_retention_s` (and, if so set, their records), and partial uploads left by a killed coordinator.
Swept once at start-up, before the server answers, then every `cleanup_interval_s`."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import UTC, datetime, timedelta

from gbair.coordinator.datasets import remove_stale_partial_uploads
from gbair.coordinator.errors import FailedPrecondition
from gbair.coordinator.jobs import job_folder
from gbair.coordinator.records import JobRecord
from gbair.coordinator.settings import CoordinatorSettings
from gbair.coordinator.store import Store

log = logging.getLogger(__name__)


async def start_cleaning(store: Store, settings: CoordinatorSettings) -> asyncio.Task:
    """Sweep now, then return the task that sweeps periodically (cancel it to stop)."""
    await asyncio.to_thread(sweep, store, settings)
    return asyncio.create_task(_sweep_periodically(store, settings))


async def _sweep_periodically(store: Store, settings: CoordinatorSettings) -> None:
    while True:
        await asyncio.sleep(settings.cleanup_interval_s)
        try:
            await asyncio.to_thread(sweep, store, settings)
        except Exception:  # a failed sweep (Redis away) is tried again at the next interval
            log.exception("clean-up sweep failed")


def sweep(store: Store, settings: CoordinatorSettings) -> None:
    for folder in remove_stale_partial_uploads(settings.datasets_dir, settings.partial_upload_max_age_s):
        log.info("removed partial upload %s", folder)
    if settings.job_retention_s is None:
        return
    cutoff = (datetime.now(UTC) - timedelta(seconds=settings.job_retention_s)).isoformat(timespec="seconds")
    for job in store.ended_jobs_updated_before(cutoff):
        try:
            if remove_job_folder(settings, job.job_id):
                log.info("removed the folder of job %s, which ended at %s", job.job_id, job.updated_at)
        except OSError:
            log.exception("could not remove the folder of job %s; its record stays", job.job_id)
            continue
        if settings.retention_deletes_records:
            store.delete_job(None, job.job_id)
            log.info("deleted job %s, which ended at %s", job.job_id, job.updated_at)


def remove_job_folder(settings: CoordinatorSettings, job_id: str) -> bool:
    """False where there was none (a job cancelled before it started); an OSError where it stays."""
    folder = job_folder(settings, job_id)
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def require_job_folder(settings: CoordinatorSettings, job: JobRecord) -> None:
    """Calls that read a job's trained rounds or adapter say so once retention has removed them."""
    if not job_folder(settings, job.job_id).is_dir():
        raise FailedPrecondition(
            f"job '{job.job_id}' ended at {job.updated_at}; its trained rounds and adapter were removed after "
            "this server's job_retention_s"
        )
