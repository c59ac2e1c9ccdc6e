"""`gbair suspects`: the examples a job flagged, with scores, suggested labels and review decisions."""

from __future__ import annotations

import argparse
import itertools

from rich.console import Console
from rich.table import Table

from gbair.cli.connection import add_connection_options, connect
from gbair.v1 import gbair_pb2 as pb


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("suspects")
    add_connection_options(parser)
    parser.add_argument("job_id")
    parser.add_argument("--limit", type=int, default=50, help="show at most this many")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    table = Table(title=f"suspects of job {args.job_id}")
    for column in ("round", "rank", "id", "score", "given", "suggested", "decision", "text"):
        table.add_column(column)
    with connect(args) as client:
        for s in itertools.islice(client.suspects(args.job_id), args.limit):
            decision = "" if s.decision == pb.DECISION_UNSPECIFIED else pb.Decision.Name(s.decision).lower()
            table.add_row(str(s.round), str(s.rank), s.example_id, f"{s.score:.4g}", s.given_label,
                          s.suggested_label, f"{decision} {s.decided_label}".strip(), s.text[:60])
    console.print(table)
    return 0
