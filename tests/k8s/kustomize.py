"""Render a kustomization: with `kubectl kustomize` where kubectl is installed, else with a small renderer
of the subset gbair's k8s/ uses (resources, images, JSON 6902 patches). The subset renderer refuses any
other kustomization field, and a test checks that it renders exactly what kubectl does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jsonpatch
import yaml

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "images", "patches"}


def render(directory: Path) -> list[dict]:
    return render_with_kubectl(directory) if shutil.which("kubectl") else render_subset(directory)


def render_with_kubectl(directory: Path) -> list[dict]:
    result = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return [document for document in yaml.safe_load_all(result.stdout) if document]


class RenderError(RuntimeError):
    pass


def render_subset(directory: Path) -> list[dict]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise RenderError(f"{directory}: the subset renderer does not know {sorted(unsupported)}; install kubectl")
    documents = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            documents += render_subset(path)
        else:
            documents += [document for document in yaml.safe_load_all(path.read_text()) if document]
    for patch in kustomization.get("patches", []):
        operations = yaml.safe_load((directory / patch["path"]).read_text())
        targets = [document for document in documents if _matches(document, patch["target"])]
        if not targets:
            raise RenderError(f"{directory}: patch {patch['path']} matches no resource")
        for target in targets:
            try:
                patched = jsonpatch.apply_patch(target, operations)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise RenderError(f"{directory}: patch {patch['path']}: {error}") from error
            documents[documents.index(target)] = patched
    for image in kustomization.get("images", []):
        for document in documents:
            _set_image(document, image)
    return documents


def _matches(document: dict, target: dict) -> bool:
    group = document["apiVersion"].rpartition("/")[0]
    return (
        document["kind"] == target["kind"]
        and document["metadata"]["name"] == target.get("name", document["metadata"]["name"])
        and group == target.get("group", group)
    )


def _set_image(node, image: dict) -> None:
    """Like kustomize's images transformer: every container, wherever it sits in the resource."""
    if isinstance(node, list):
        for item in node:
            _set_image(item, image)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("containers", "initContainers") and isinstance(value, list):
            for container in value:
                name, _, tag = container.get("image", "").partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
        else:
            _set_image(value, image)
