"""gbair.distributed builds on gbair.serving and never the reverse, and the Ray settings load without Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import gbair

PACKAGE_ROOT = Path(gbair.__file__).parent


def imported_modules(package: str) -> set[str]:
    """Every module a package's files import, lazy imports inside functions included."""
    modules = set()
    for source in (PACKAGE_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
                modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def _inside(modules: set[str], package: str) -> set[str]:
    return {m for m in modules if m == package or m.startswith(package + ".")}


def test_serving_imports_nothing_from_distributed_which_builds_on_it():
    assert not _inside(imported_modules("serving"), "gbair.distributed")
    assert _inside(imported_modules("distributed"), "gbair.serving")


def test_the_ray_settings_load_without_importing_ray():
    code = (
        "import sys; import gbair.distributed.config, gbair.serving.config; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
