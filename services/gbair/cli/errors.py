"""What a command reports instead of a traceback: one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

import grpc
from pydantic import ValidationError

USER_ERROR_EXIT = 2


class CommandError(Exception):
    """Something wrong with what the user asked for, said in one line."""

    prefix = "gbair: error: "


# Errors of the user's input or environment rather than of gbair: a bad setting, a file that cannot be
# read or written, a coordinator that refuses or cannot be reached.
REPORTED = (CommandError, ValidationError, OSError, grpc.RpcError)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: the full usage would bury it, and `--help` shows it anyway."""

    def error(self, message: str) -> None:
        self.exit(USER_ERROR_EXIT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


@contextlib.contextmanager
def as_command_error(*types: type[BaseException]) -> Iterator[None]:
    """Report `types` raised inside as a CommandError; errors reported in their own way pass unchanged
    (pydantic's ValidationError, for one, is a ValueError)."""
    try:
        yield
    except REPORTED:
        raise
    except types as error:
        raise CommandError(str(error)) from error


def report(error: BaseException) -> int:
    print(f"{getattr(error, 'prefix', CommandError.prefix)}{_describe(error)}", file=sys.stderr)
    return USER_ERROR_EXIT


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.RpcError):
        text = f"{error.code().name}: {error.details()}"
    elif isinstance(error, ValidationError):
        text = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors())
    elif isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    else:
        text = str(error)
    # One line however the message was written: several problems, or a multi-line detail from a library.
    return " ".join(text.split())
