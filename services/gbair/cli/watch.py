"""`gbair watch`: follow a job's progress until it ends, then print its round table."""

from __future__ import annotations

import argparse

from rich.console import Console

from gbair.cli.connection import add_connection_options, connect
from gbair.cli.following import follow
from gbair.v1 import gbair_pb2 as pb


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("watch")
    add_connection_options(parser)
    parser.add_argument("job_id")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    with connect(args) as client:
        job = follow(client, args.job_id, console)
    return 0 if job.status == pb.SUCCEEDED else 1
