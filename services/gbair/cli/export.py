"""`gbair export`: download a finished job's reviewed training set and best adapter."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from gbair.cli.connection import add_connection_options, connect


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("export")
    add_connection_options(parser)
    parser.add_argument("job_id")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/cleaned/ and OUT/adapter/")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    with connect(args) as client:
        cleaned = client.export_cleaned(args.job_id, args.out / "cleaned")
        adapter = client.export_adapter(args.job_id, args.out / "adapter")
    console.print(f"cleaned training set: {', '.join(map(str, cleaned))}\nadapter: {args.out / 'adapter'} ({len(adapter)} files)")
    return 0
