"""`gbair delete job|dataset ID`: remove a job that has ended (with its trained rounds and adapter on the
coordinator), or a data set no queued or running job uses."""

from __future__ import annotations

import argparse

from rich.console import Console

from gbair.cli.connection import add_connection_options, connect


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("delete")
    kinds = parser.add_subparsers(dest="kind", required=True)
    job = kinds.add_parser("job", help="a job that has ended; cancel a queued or running one first (gbair cancel)")
    job.add_argument("job_id")
    job.set_defaults(handler=run_job)
    dataset = kinds.add_parser("dataset", help="a data set that no queued or running job uses")
    dataset.add_argument("dataset_id")
    dataset.set_defaults(handler=run_dataset)
    for kind in (job, dataset):
        add_connection_options(kind)


def run_job(args: argparse.Namespace, console: Console) -> int:
    with connect(args) as client:
        client.delete_job(args.job_id)
    console.print(f"deleted job {args.job_id}")
    return 0


def run_dataset(args: argparse.Namespace, console: Console) -> int:
    with connect(args) as client:
        client.delete_dataset(args.dataset_id)
    console.print(f"deleted data set {args.dataset_id}")
    return 0
