"""`gbair rerun JOB_ID`: a new job on the job's reviewed training set (what `gbair export` writes), with
its validation and test data and spec; prints the new job's id."""

from __future__ import annotations

import argparse

from rich.console import Console

from gbair.cli.connection import add_connection_options, connect


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("rerun")
    add_connection_options(parser)
    parser.add_argument("job_id", help="a job that succeeded, reviewed with `gbair review`")
    parser.add_argument("--request-id", help="the same id again returns the same job instead of a second one")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    with connect(args) as client:
        job = client.rerun_with_decisions(args.job_id, request_id=args.request_id)
    console.print(job.job_id)
    return 0
