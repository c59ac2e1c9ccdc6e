"""`gbair review`: record decisions on a job's suspects (accept the automatic action, reject it, or set a label)."""

from __future__ import annotations

import argparse

from rich.console import Console

from gbair.cli.connection import add_connection_options, connect
from gbair.v1 import gbair_pb2 as pb


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("review")
    add_connection_options(parser)
    parser.add_argument("job_id")
    parser.add_argument("--accept", nargs="+", default=[], metavar="ID", help="apply the automatic action")
    parser.add_argument("--reject", nargs="+", default=[], metavar="ID", help="keep as given")
    parser.add_argument("--set-label", nargs="+", default=[], type=label_assignment, metavar="ID=LABEL",
                        help="keep with this label")
    parser.set_defaults(handler=run)


def label_assignment(item: str) -> pb.ReviewDecision:
    example_id, separator, label = item.partition("=")
    if not (example_id and separator and label):
        raise argparse.ArgumentTypeError(f"takes ID=LABEL, got '{item}'")
    return pb.ReviewDecision(example_id=example_id, decision=pb.SET_LABEL, label=label)


def run(args: argparse.Namespace, console: Console) -> int:
    decisions = [pb.ReviewDecision(example_id=i, decision=pb.ACCEPT) for i in args.accept]
    decisions += [pb.ReviewDecision(example_id=i, decision=pb.REJECT) for i in args.reject]
    decisions += args.set_label
    with connect(args) as client:
        recorded = client.review(args.job_id, decisions)
    console.print(f"recorded {recorded} decisions")
    return 0
