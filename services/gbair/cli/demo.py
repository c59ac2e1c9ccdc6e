"""`gbair demo`: the whole service on this machine. Starts a coordinator (with its own local Redis),
uploads a named data set through the gRPC API, submits a job with flipped labels, shows its progress,
prints the round table and writes report.json and accuracy.png.

Its defaults run on a bundled set, so the demo works on any machine: BANKING77, whose short messages
MiniLM learns within minutes on a CPU. DiaSafety, the G-BAIR paper's conversational-safety domain, stays
near chance at this size once 30% of its labels are flipped (validation 0.53 with 500 or 600 examples),
which leaves cleaning nothing to show. A few more epochs at a higher learning rate than a job's defaults,
and 32 tokens (more than BANKING77's messages need), keep each round short."""

from __future__ import annotations

import argparse
import csv
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from gbair.cli.errors import as_command_error
from gbair.cli.extras import require
from gbair.cli.following import follow
from gbair.cli.plots import plot_rounds
from gbair.cli.web import DEFAULT_PORT as REVIEW_PORT
from gbair.client import GbairClient
from gbair.coordinator.local import CoordinatorStartError, LocalCoordinator
from gbair.core.config import DEFAULT_MODEL
from gbair.core.data import NAMED_SETS, TextDataset, load_splits
from gbair.core.report import RecoveryReport
from gbair.v1 import gbair_pb2 as pb

T = TypeVar("T")
WORKER_GRACE_S = 5.0


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("demo", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="report.json, accuracy.png, the state folder")
    parser.add_argument("--data", default="banking77", choices=list(NAMED_SETS))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="searched first for the named set (then env GBAIR_DATA_DIR, the user data folder, the bundled sets)")
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--val-size", type=int, default=300)
    parser.add_argument("--corrupt", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--max-length", type=int, default=32, help="tokens per example, prompt excluded")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="ray", choices=["ray", "local"],
                        help="where rounds run: a local Ray cluster, or inside the coordinator process")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    if args.backend == "ray":
        require("ray", "demo --backend ray")
    args.out.mkdir(parents=True, exist_ok=True)
    with as_command_error(ValueError):  # DataError among them
        files = _write_upload_files(args, args.out / "upload")
    settings = {"models": [args.model], "max_concurrent_jobs": 1, "backend": args.backend}
    # SIGTERM must unwind through the with-block below, so that the coordinator, its Redis and its Ray
    # cluster are stopped too instead of being left running.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    console.print("starting a local coordinator (gRPC, Redis)...")
    with as_command_error(CoordinatorStartError), LocalCoordinator(args.out / "state", settings) as coordinator, \
            GbairClient(coordinator.target, coordinator.token) as client:
        console.print(f"coordinator on {coordinator.target}; log: {coordinator.log_path}")
        job = _on_worker_thread(lambda: _run_job(args, files, client, console), interrupt=client.close)
    if job.status != pb.SUCCEEDED:
        console.print(f"[red]the job ended {pb.JobStatus.Name(job.status).lower()}[/red]: {job.error}")
        return 1
    report = RecoveryReport.model_validate_json(job.report_json)
    report_path = report.write(args.out / "report.json")
    plot = plot_rounds(report, args.out / "accuracy.png")
    console.print(f"report: {report_path}\nplot: {plot}")
    # Unwrapped, so that the commands can be copied whole at any terminal width.
    console.print(_review_instructions(coordinator, job.job_id), highlight=False, soft_wrap=True)
    return 0


def _review_instructions(coordinator: LocalCoordinator, job_id: str) -> str:
    """How to review the job's suspects in the browser. The demo has stopped its coordinator by now, but
    the state folder keeps the job, so the same settings file serves it again."""
    return (
        "review the suspects in the browser (needs gbair[web]): start the coordinator again on the demo's state, "
        "then the review app, each in its own terminal:\n"
        f"  gbair serve --config {coordinator.config_path}\n"
        f"  gbair web --target {coordinator.target}\n"
        f"open http://127.0.0.1:{REVIEW_PORT}/jobs/{job_id} and sign in with the token in {coordinator.config_path} (tokens[0].token)"
    )


def _run_job(args: argparse.Namespace, files: dict[str, Path], client: GbairClient, console: Console) -> pb.Job:
    dataset = client.upload_dataset(args.data, files["train"], files["validation"], files["test"])
    console.print(f"uploaded {args.data}: {dataset.train_size} train, {dataset.validation_size} validation, "
                  f"{dataset.test_size} test (data set {dataset.dataset_id})")
    job = client.submit(pb.JobSpec(dataset_id=dataset.dataset_id, model=args.model, rounds=args.rounds,
                                   corrupt=args.corrupt, seed=args.seed, epochs=args.epochs,
                                   learning_rate=args.lr, max_length=args.max_length))
    console.print(f"submitted job {job.job_id}")
    return follow(client, job.job_id, console)


def _on_worker_thread(work: Callable[[], T], interrupt: Callable[[], None]) -> T:
    """Run `work` on a daemon thread while this one waits. SIGTERM's SystemExit and Ctrl-C's
    KeyboardInterrupt then arrive in this wait, a known point, instead of anywhere inside gRPC or rich,
    whose locks an exception raised at the wrong moment can leave held. `interrupt` makes the work fail
    fast, so that its progress bars are taken down before the coordinator is stopped."""
    outcome: Future[T] = Future()

    def target() -> None:
        try:
            outcome.set_result(work())
        except BaseException as error:  # handed to the waiting thread, which re-raises it
            outcome.set_exception(error)

    worker = threading.Thread(target=target, name="gbair-demo", daemon=True)
    worker.start()
    try:
        return outcome.result()
    except (SystemExit, KeyboardInterrupt):
        interrupt()
        worker.join(timeout=WORKER_GRACE_S)
        raise


def _write_upload_files(args: argparse.Namespace, folder: Path) -> dict[str, Path]:
    """The named set's sampled splits as CSV files, the way a user would upload their own data."""
    splits = load_splits(args.data, data_dir=args.data_dir, train_size=args.train_size, val_size=args.val_size, seed=args.seed)
    folder.mkdir(parents=True, exist_ok=True)
    datasets = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    return {name: _write_csv(dataset, folder / f"{name}.csv") for name, dataset in datasets.items() if dataset is not None}


def _write_csv(dataset: TextDataset, path: Path) -> Path:
    columns = ["id", "text", "label"] + (["text_pair"] if dataset.text_pairs is not None else [])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for k, example_id in enumerate(dataset.ids):
            row = [example_id, dataset.texts[k], dataset.label_names[dataset.labels[k]]]
            if dataset.text_pairs is not None:
                row.append(dataset.text_pairs[k])
            writer.writerow(row)
    return path
