"""A CustomResourceDefinition's openAPIV3Schema as a JSON Schema that validates the way the API server does.

Three differences from reading the schema as JSON Schema, each a trap:
- `x-kubernetes-int-or-string` fields take an integer or a string;
- the API server fills in `default`s before it validates, so a required field with a default is optional;
- unknown fields are rejected (strict field validation), except under `x-kubernetes-preserve-unknown-fields`.
"""

from __future__ import annotations

from pathlib import Path

from functools import cache

import jsonschema
import yaml


@cache
def crd_validator(crd_file: Path, version: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(crd_file.read_text())
    (served,) = [entry for entry in crd["spec"]["versions"] if entry["name"] == version]
    schema = as_json_schema(served["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def as_json_schema(node: dict) -> dict:
    node = dict(node)
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    properties = node.get("properties")
    if properties is not None:
        node["properties"] = {name: as_json_schema(child) for name, child in properties.items()}
        required = [name for name in node.get("required", []) if "default" not in properties.get(name, {})]
        if required:
            node["required"] = required
        else:
            node.pop("required", None)
        if not node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in node:
            node["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = as_json_schema(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = as_json_schema(node["items"])
    for combinator in ("anyOf", "allOf", "oneOf"):
        if combinator in node:
            node[combinator] = [as_json_schema(child) for child in node[combinator]]
    return node
