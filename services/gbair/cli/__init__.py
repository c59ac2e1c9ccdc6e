"""The `gbair` command line."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from gbair.cli import recover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gbair", description="Find and fix mislabeled training data for PET.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    recover.add_parser(subcommands)
    args = parser.parse_args(argv)
    return args.handler(args, Console(stderr=False))


if __name__ == "__main__":
    sys.exit(main())
