"""The `gbair` command line."""

from __future__ import annotations

import argparse
import sys
import warnings

import transformers
from rich.console import Console

from gbair.cli import data, demo, export, recover, review, serve, submit, suspects, watch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gbair", description="Find and fix mislabeled training data for PET.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for command in (recover, serve, demo, submit, watch, suspects, review, export, data):
        command.add_parser(subcommands)
    args = parser.parse_args(argv)
    # Library chatter (weight-loading bars, deprecation notices) would bury gbair's own progress bars.
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    # Piped output gets a fixed width wide enough for the round table instead of rich's 80 columns.
    return args.handler(args, Console(width=None if sys.stdout.isatty() else 120))


if __name__ == "__main__":
    sys.exit(main())
