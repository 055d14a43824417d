"""Shared helpers for the infra tests: parsing Bicep with pycep and reading repo files."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, cast

from tests import REPO_ROOT as TESTS_REPO_ROOT

REPO_ROOT = TESTS_REPO_ROOT
INFRA = REPO_ROOT / "infra"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def contract() -> dict[str, list[str]]:
    data = load_json(INFRA / "settings-contract.json")
    return {k: v for k, v in data.items() if not k.startswith("_")}


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse_bicep(path: Path) -> dict[str, Any]:
    from pycep import BicepParser

    result = cast("dict[str, Any]", BicepParser().parse(text=path.read_text(encoding="utf-8")))
    return result


def module(name: str) -> dict[str, Any]:
    return parse_bicep(INFRA / "modules" / f"{name}.bicep")


def main_bicep() -> dict[str, Any]:
    return parse_bicep(INFRA / "main.bicep")


def resource_config(resource: dict[str, Any]) -> dict[str, Any]:
    """The body of a resource; for `= if (...) {...}` pycep nests it one level deeper."""
    config: dict[str, Any] = resource["config"]
    if "condition" in config and isinstance(config.get("config"), dict):
        inner: dict[str, Any] = config["config"]
        return inner
    return config


def resources_of_type(doc: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [r for r in doc["resources"].values() if r["type"].lower() == rtype.lower()]


def one_resource(doc: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = resources_of_type(doc, rtype)
    assert len(found) == 1, f"expected exactly one {rtype}, found {len(found)}"
    return resource_config(found[0])


def string_leaves(node: Any) -> list[str]:
    """Every string anywhere inside a parsed value (interpolations stay as raw text)."""
    out: list[str] = []
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for value in node.values():
            out.extend(string_leaves(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(string_leaves(value))
    return out


_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


def iso_seconds(value: str) -> float:
    """ISO 8601 duration (days and smaller) -> seconds."""
    match = _DURATION.match(value)
    if not match or value in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def timespan_seconds(value: str) -> float:
    """.NET TimeSpan 'hh:mm:ss' -> seconds."""
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def resolve(doc: dict[str, Any], value: Any) -> Any:
    """Follow a bare identifier to its variable value or parameter default (pycep keeps
    references as plain strings). Anything else is returned unchanged."""
    seen: set[str] = set()
    while isinstance(value, str) and value not in seen:
        seen.add(value)
        if value in doc.get("variables", {}):
            value = doc["variables"][value]["value"]
        elif value in doc.get("parameters", {}) and "default" in doc["parameters"][value]:
            value = doc["parameters"][value]["default"]
        else:
            break
    return value


def role_definition_guid(doc: dict[str, Any], role_assignment: dict[str, Any]) -> str:
    """The built-in role GUID of a roleAssignments resource using subscriptionResourceId(...)."""
    rid = resource_config(role_assignment)["properties"]["roleDefinitionId"]
    func = rid["function"]
    assert func["type"] == "subscription_resource_id", func
    assert func["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    guid = resolve(doc, func["parameters"]["resource_name_1"])
    assert isinstance(guid, str)
    return guid.lower()
