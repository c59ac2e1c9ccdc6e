"""`gbair submit`: upload a data set (or name an uploaded one) and queue a G-BAIR job on it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from rich.console import Console

from gbair.cli.connection import add_connection_options, connect
from gbair.cli.errors import as_command_error
from gbair.cli.following import follow
from gbair.core.config import CleaningAction, ScoringMethod
from gbair.v1 import gbair_pb2 as pb


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("submit")
    add_connection_options(parser)
    data = parser.add_argument_group("data")
    source = data.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="training file (.csv or .jsonl) to upload")
    source.add_argument("--dataset-id", help="a data set uploaded before")
    data.add_argument("--val-data", type=Path, default=None)
    data.add_argument("--test-data", type=Path, default=None)
    data.add_argument("--name", default=None, help="data set name (default: the file's stem)")
    data.add_argument("--text-column", default="")
    data.add_argument("--text-pair-column", default="")
    data.add_argument("--label-column", default="")
    data.add_argument("--id-column", default="")
    job = parser.add_argument_group("job (unset: the server's defaults)")
    job.add_argument("--model")
    job.add_argument("--method", choices=get_args(ScoringMethod))
    job.add_argument("--action", choices=get_args(CleaningAction))
    job.add_argument("--rounds", type=int)
    job.add_argument("--budget", type=float)
    job.add_argument("--patience", type=int)
    job.add_argument("--round-trainings", type=int)
    job.add_argument("--epochs", type=int)
    job.add_argument("--batch-size", type=int)
    job.add_argument("--lr", dest="learning_rate", type=float)
    job.add_argument("--virtual-tokens", type=int)
    job.add_argument("--seed", type=int)
    job.add_argument("--train-size", type=int)
    job.add_argument("--val-size", type=int)
    job.add_argument("--corrupt", type=float, help="flip this fraction of training labels (experiments)")
    parser.add_argument("--request-id", default=None, help="resubmitting with the same id returns the same job")
    parser.add_argument("--watch", action="store_true", help="follow the job until it ends")
    parser.set_defaults(handler=run)


SPEC_OPTIONS = (
    "model", "method", "action", "rounds", "budget", "patience", "round_trainings", "epochs", "batch_size", "learning_rate",
    "virtual_tokens", "seed", "train_size", "val_size", "corrupt",
)


def run(args: argparse.Namespace, console: Console) -> int:
    with connect(args) as client:
        dataset_id = args.dataset_id
        if args.data is not None:
            columns = pb.ColumnNames(text=args.text_column, text_pair=args.text_pair_column,
                                     label=args.label_column, id=args.id_column)
            with as_command_error(ValueError):
                dataset = client.upload_dataset(args.name or args.data.stem, args.data, args.val_data, args.test_data, columns)
            console.print(f"data set {dataset.dataset_id}: {dataset.train_size} train, "
                          f"{dataset.validation_size} validation, {dataset.test_size} test")
            dataset_id = dataset.dataset_id
        spec = {k: getattr(args, k) for k in SPEC_OPTIONS if getattr(args, k) is not None}
        job = client.submit(pb.JobSpec(dataset_id=dataset_id, **spec), args.request_id)
        console.print(f"job {job.job_id} {pb.JobStatus.Name(job.status).lower()}")
        if args.watch:
            job = follow(client, job.job_id, console)
            return 0 if job.status == pb.SUCCEEDED else 1
    return 0
