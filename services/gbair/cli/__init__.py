"""The `gbair` command line. Only the chosen subcommand's module is imported, so that the client commands
run on the base install (no torch) and start fast, and a command whose extra is missing says which one
to install instead of failing on an import."""

from __future__ import annotations

import importlib
import sys
from typing import NamedTuple

from rich.console import Console

from gbair.cli.errors import REPORTED, OneLineArgumentParser, report
from gbair.cli.extras import require

INTERRUPTED_EXIT = 130


class Subcommand(NamedTuple):
    help: str
    extra: str | None  # what it needs beyond the base install


# Each subcommand is the module gbair.cli.NAME, whose `add_parser(subcommands)` adds its parser.
SUBCOMMANDS = {
    "recover": Subcommand("Train, find mislabeled examples with influence, clean, retrain; write report.json.", "engine"),
    "serve": Subcommand("Run the coordinator: the gRPC API, with job state in Redis.", "service"),
    "demo": Subcommand("Start a local coordinator and Redis, run one job through the gRPC API, write a report.", "service"),
    "submit": Subcommand("Upload a data set and queue a job on the coordinator.", None),
    "watch": Subcommand("Follow a job's progress until it ends.", None),
    "suspects": Subcommand("List the examples a job flagged.", None),
    "review": Subcommand("Accept, reject or relabel a job's suspects.", None),
    "export": Subcommand("Download the cleaned data set and the best adapter.", None),
    "rerun": Subcommand("Run a reviewed job again on its reviewed training set; print the new job's id.", None),
    "cancel": Subcommand("Cancel a queued or running job.", None),
    "delete": Subcommand("Delete a job that has ended, or a data set no running job uses, with their files.", None),
    "web": Subcommand("Serve the review app: jobs, suspects and their evidence in the browser.", "web"),
    "data": Subcommand("List the named data sets and where they are; fetch the ones gbair does not ship.", None),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = _parser(argv).parse_args(argv)
        # Piped output gets a fixed width wide enough for the round table instead of rich's 80 columns.
        return args.handler(args, Console(width=None if sys.stdout.isatty() else 120))
    except REPORTED as error:
        return report(error)
    except KeyboardInterrupt:
        return INTERRUPTED_EXIT


def _parser(argv: list[str]) -> OneLineArgumentParser:
    """With a subcommand named, its full parser (after checking its extra); otherwise only the list of
    subcommands, for `--help` and for the error that names the choices."""
    parser = OneLineArgumentParser(prog="gbair", description="Find and fix mislabeled training data for PET.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    named = argv[0] if argv else None
    if named in SUBCOMMANDS:
        require(SUBCOMMANDS[named].extra, named)
        importlib.import_module(f"gbair.cli.{named}").add_parser(subcommands)
        return parser
    for name, command in SUBCOMMANDS.items():
        extra = f" (needs gbair[{command.extra}])" if command.extra else ""
        subcommands.add_parser(name, help=command.help + extra)
    return parser
