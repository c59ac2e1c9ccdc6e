"""The optional extras of pyproject.toml as the command line sees them: whether one is installed, and the
error that names the extra a command needs."""

from __future__ import annotations

import importlib.util

from gbair.cli.errors import CommandError

# Each extra's own top-level modules. engine, service and ray nest: service has engine's too, ray has
# service's. web, the review app, stands alone: it is a client of the coordinator.
EXTRA_MODULES = {
    "engine": ("torch", "transformers", "peft", "numpy", "cleanlab", "sklearn", "scipy", "gguf", "safetensors", "matplotlib"),
    "service": ("redis", "grpc_health", "grpc_reflection"),
    "ray": ("ray",),
    "web": ("fastapi", "jinja2", "uvicorn", "python_multipart"),
}
EXTRAS = tuple(EXTRA_MODULES)
NESTED_EXTRAS = ("engine", "service", "ray")


class MissingExtra(CommandError):
    prefix = ""  # the message starts with the command it is about

    def __init__(self, command: str, extra: str):
        super().__init__(f"gbair {command} needs the {extra} extra: pip install 'gbair[{extra}]'")


def installed(extra: str | None) -> bool:
    """Whether `extra` (None: the base install) and the extras it includes are installed. Looks for the
    modules without importing them, which would cost seconds for torch."""
    if extra is None:
        return True
    included = NESTED_EXTRAS[: NESTED_EXTRAS.index(extra) + 1] if extra in NESTED_EXTRAS else (extra,)
    return all(importlib.util.find_spec(module) is not None for name in included for module in EXTRA_MODULES[name])


def require(extra: str | None, command: str) -> None:
    if not installed(extra):
        raise MissingExtra(command, extra)
