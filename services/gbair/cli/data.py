"""`gbair data`: where each named data set is found on this machine, and fetching the ones gbair may
not ship (SST-2, OLID) from their pinned public sources. Imports only light modules, so that it works
in a client install without torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from gbair.cli.errors import CommandError
from gbair.named_sets.catalog import CATALOG
from gbair.named_sets.fetch import MIRROR_ENV, FetchError, fetch, mirror
from gbair.named_sets.locations import locate, stored_file, user_data_dir

def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "data", help="List the named data sets and where they are; fetch the ones gbair does not ship."
    )
    actions = parser.add_subparsers(dest="data_command", required=True)
    listing = actions.add_parser("list", help="Each named set: where it is found, its size and license.")
    listing.add_argument("--data-dir", type=Path, default=None, help="searched first (then env GBAIR_DATA_DIR)")
    listing.set_defaults(handler=run_list)
    fetching = actions.add_parser("fetch", help="Download named sets from their pinned sources, checking sha256.")
    fetching.add_argument("names", nargs="+", metavar="NAME", help=", ".join(CATALOG))
    fetching.add_argument("--dir", type=Path, default=None,
                          help=f"where to put them (default: the per-user data folder, {user_data_dir()})")
    fetching.add_argument("--mirror", default=None,
                          help=f"base URL serving OWNER/REPO/COMMIT/PATH (env {MIRROR_ENV}; default: {mirror()})")
    fetching.set_defaults(handler=run_fetch)


def run_list(args: argparse.Namespace, console: Console) -> int:
    table = Table("set", "found in", "size", "license", "folder")
    table.columns[-1].overflow = "fold"
    for named in CATALOG.values():
        found = locate(named, args.data_dir)
        if found is None:
            table.add_row(named.name, "not present", "–", named.license, f"gbair data fetch {named.name}")
            continue
        origin, folder = found
        files = [stored_file(folder, file) for file in named.files.values()]
        size = decimal(sum(path.stat().st_size for path in files if path is not None))
        table.add_row(named.name, origin, size, named.license, str(folder))
    console.print(table)
    console.print("Work that uses a set cites its source:")
    for named in CATALOG.values():
        console.print(f"  {named.name}: {named.citation}", highlight=False)
    return 0


def run_fetch(args: argparse.Namespace, console: Console) -> int:
    unknown = [name for name in args.names if name not in CATALOG]
    if unknown:
        raise CommandError(f"unknown data set {', '.join(unknown)}; expected one of {', '.join(CATALOG)}")
    root = args.dir or user_data_dir()
    base_url = mirror(args.mirror)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            folders = [fetch(CATALOG[name], root, base_url, progress) for name in args.names]
    except FetchError as error:
        raise CommandError(str(error)) from error
    except OSError as error:
        raise CommandError(f"cannot write to {root}: {error.strerror or error}") from error
    for name, folder in zip(args.names, folders):
        console.print(f"{name}: {folder} (sha256 checked)")
    return 0

