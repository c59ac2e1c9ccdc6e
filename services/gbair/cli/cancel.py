"""`gbair cancel JOB_ID`: a queued job ends at once, a running one at its next progress report."""

from __future__ import annotations

import argparse

from rich.console import Console

from gbair.cli.connection import add_connection_options, connect
from gbair.v1 import gbair_pb2 as pb


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("cancel")
    add_connection_options(parser)
    parser.add_argument("job_id")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    with connect(args) as client:
        job = client.cancel(args.job_id)
    console.print(f"job {args.job_id}: {pb.JobStatus.Name(job.status).lower()}")
    return 0
