"""`gbair web`: serve the review app, a client of the coordinator like the other commands. Its users
sign in with their own tokens, so it takes the coordinator's address and no token."""

from __future__ import annotations

import argparse
import os
import secrets

from rich.console import Console

from gbair.cli.connection import add_address_options

DEFAULT_PORT = 8080


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("web", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_address_options(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console) -> int:
    import uvicorn

    from gbair.web.app import create_app
    from gbair.web.coordinator import Coordinator
    from gbair.web.session import Sessions

    # Signs the CSRF cookies. Replicas behind one Service need the same one (env GBAIR_WEB_SECRET); a
    # random one only means that a restart asks open forms to be reloaded.
    secret = os.environ.get("GBAIR_WEB_SECRET", "").encode() or secrets.token_bytes(32)
    app = create_app(Coordinator(args.target, args.tls_ca), Sessions(secret))
    console.print(f"review app on http://{args.host}:{args.port} for the coordinator at {args.target}", highlight=False)
    # proxy_headers: behind an ingress that terminates TLS, the scheme is https and cookies get Secure.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", proxy_headers=True)
    return 0
