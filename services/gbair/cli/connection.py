"""The options every API subcommand shares: where the coordinator is and which token to send."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gbair.cli.errors import CommandError
from gbair.client import GbairClient

DEFAULT_TARGET = "127.0.0.1:50051"


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    group = add_address_options(parser)
    group.add_argument("--token", default=os.environ.get("GBAIR_TOKEN"), help="bearer token (env GBAIR_TOKEN)")


def add_address_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Where the coordinator is, without a token: for `gbair web`, whose users each sign in with their own."""
    group = parser.add_argument_group("connection")
    group.add_argument("--target", default=os.environ.get("GBAIR_TARGET", DEFAULT_TARGET),
                       help="host:port of the coordinator (env GBAIR_TARGET)")
    group.add_argument("--tls-ca", type=Path, default=os.environ.get("GBAIR_TLS_CA"),
                       help="CA certificate to check a TLS coordinator with (env GBAIR_TLS_CA)")
    return group


def connect(args: argparse.Namespace) -> GbairClient:
    if not args.token:
        raise CommandError("no token; pass --token or set GBAIR_TOKEN")
    return GbairClient(args.target, args.token, tls_ca=args.tls_ca)
