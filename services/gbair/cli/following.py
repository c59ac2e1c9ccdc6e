"""Follow a job's event stream with progress bars, then print its round table."""

from __future__ import annotations

from rich.console import Console

from gbair.cli.display import against_round_zero, class_marks, progress_display, round_table, validation_accuracy
from gbair.client import GbairClient
from gbair.core.report import RecoveryReport
from gbair.v1 import gbair_pb2 as pb

PERCENT = 100


def follow(client: GbairClient, job_id: str, console: Console) -> pb.Job:
    """Show the job's progress until it ends; returns the finished job."""
    with progress_display(console) as bars:
        for event in client.watch(job_id):
            if event.phase in ("train", "evaluate", "influence"):
                bars(f"round {event.round}: {event.phase}", round(event.fraction * PERCENT), PERCENT)
            elif event.phase == "round":
                m = event.metrics
                against = against_round_zero(m.val_change_p_value if m.HasField("val_change_p_value") else None)
                console.print(f"round {m.round}: train {m.train_size}, "
                              f"val {validation_accuracy(m.val_accuracy, m.val_accuracies, m.model_training)}{against}, flagged {m.flagged}"
                              f"{class_marks(m.class_short_of_labels if m.HasField('class_short_of_labels') else None)}")
            elif event.phase in ("queued", "started", "resumed", "succeeded", "failed", "cancelled"):
                console.print(f"job {job_id}: {event.phase}" + (f" ({event.message})" if event.message else ""))
    job = client.get_job(job_id)
    if job.report_json:
        console.print(round_table(RecoveryReport.model_validate_json(job.report_json)))
    return job
