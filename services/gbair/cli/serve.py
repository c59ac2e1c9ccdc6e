"""`gbair serve`: run the coordinator (gRPC API, jobs in Redis) until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from pathlib import Path

import redis
import yaml
from rich.console import Console

from gbair.cli.errors import CommandError, as_command_error
from gbair.cli.extras import require
from gbair.coordinator.settings import load_settings

MAX_PORT = 65535


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "serve",
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
    with as_command_error(ValueError, yaml.YAMLError):
        settings = load_settings(
            args.config, listen=args.listen, redis_url=args.redis_url, state_dir=args.state_dir,
            max_concurrent_jobs=args.max_concurrent_jobs,
        )
    check_can_listen(settings.listen)
    startup_errors: tuple[type[Exception], ...] = (ValueError, redis.RedisError)
    if settings.backend == "ray":
        require("ray", "serve with backend: ray")
        from gbair.distributed.cluster import ClusterAccessError, ClusterStartError  # Ray: only with the ray extra

        startup_errors += (ClusterAccessError, ClusterStartError)
    # The engine is imported only now: a bad setting is reported without waiting seconds for torch.
    from gbair.cli.quiet_libraries import quiet_engine_libraries
    from gbair.coordinator.server import serve

    quiet_engine_libraries()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with as_command_error(*startup_errors):
        asyncio.run(serve(settings))
    return 0


def check_can_listen(listen: str) -> None:
    """Fail with one line where the gRPC server would not: its core logs errors of its own before it
    raises, and on Linux shares a port another server listens on (SO_REUSEPORT)."""
    host, _, port = listen.rpartition(":")
    if not (port.isdigit() and int(port) <= MAX_PORT):
        raise CommandError(f"listen: expected HOST:PORT, got '{listen}'")
    try:
        with socket.create_server((host.strip("[]"), int(port))):
            pass
    except OSError as error:
        raise CommandError(f"cannot listen on {listen}: {error.strerror or error}") from error
