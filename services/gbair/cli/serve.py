"""`gbair serve`: run the coordinator (gRPC API, jobs in Redis) until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from gbair.coordinator.server import serve
from gbair.coordinator.settings import load_settings


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "serve", help="Run the coordinator: the gRPC API, with job state in Redis.",
        description="Settings come from --config (YAML), then GBAIR_* environment variables, then these options. "
        "Without a Redis URL a local redis-server is started in the state folder.",
    )
    parser.add_argument("--config", type=Path, default=None, help="YAML settings file (see docs in README)")
    parser.add_argument("--listen", default=None, help="host:port to bind (default 127.0.0.1:50051)")
    parser.add_argument("--redis-url", default=None, help="redis://... (default: start a local redis-server)")
    parser.add_argument("--state-dir", type=Path, default=None, help="data sets, job folders, the local Redis")
    parser.add_argument("--max-concurrent-jobs", type=int, default=None)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        settings = load_settings(
            args.config, listen=args.listen, redis_url=args.redis_url, state_dir=args.state_dir,
            max_concurrent_jobs=args.max_concurrent_jobs,
        )
    except (ValidationError, ValueError, OSError) as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(settings))
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    return 0
