"""`gbair suspects`: the examples a job flagged, with scores, given (and original) and suggested labels, the
round's model's most probable label, and review decisions."""

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
    for column in ("round", "rank", "id", "score", "given", "suggested", "model says", "decision", "text"):
        table.add_column(column)
    with connect(args) as client:
        label_names = client.label_names(args.job_id)
        for s in itertools.islice(client.suspects(args.job_id), args.limit):
            decision = "" if s.decision == pb.DECISION_UNSPECIFIED else pb.Decision.Name(s.decision).lower()
            given = s.given_label if s.original_label == s.given_label else f"{s.given_label} (was {s.original_label})"
            table.add_row(str(s.round), str(s.rank), s.example_id, f"{s.score:.4g}", given, s.suggested_label,
                          _most_probable(s, label_names), f"{decision} {s.decided_label}".strip(), s.text[:60])
    console.print(table)
    return 0


def _most_probable(suspect: pb.Suspect, label_names: list[str]) -> str:
    """The round's model's most probable label and its probability; empty for rounds scored before
    reports kept probabilities."""
    if not suspect.probabilities:
        return ""
    best = max(range(len(suspect.probabilities)), key=suspect.probabilities.__getitem__)
    return f"{label_names[best]} {suspect.probabilities[best]:.2f}"
