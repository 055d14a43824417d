"""The layering holds: the use cases see ports only, the domain sees nothing, the interface never reaches past the
composition root into adapters. Checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import REPO_ROOT

ROOT = REPO_ROOT
PACKAGE = ROOT / "order_functions"

# Imports a layer must not make (prefix match on the module name).
FORBIDDEN = {
    "domain": ("order_functions.application", "order_functions.infrastructure", "order_functions.interface",
               "order_functions.bootstrap", "psycopg", "grpc", "azure", "aiohttp", "opentelemetry"),
    "application": ("order_functions.infrastructure", "order_functions.interface", "order_functions.bootstrap",
                    "psycopg", "psycopg_pool", "grpc", "azure", "protos"),
    "interface": ("order_functions.infrastructure", "psycopg", "psycopg_pool", "grpc", "protos"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    modules = sorted((PACKAGE / layer).rglob("*.py"))
    assert modules, f"no modules under order_functions/{layer}"
    leaks = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules
        for name in sorted(imported_modules(path))
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])
    ]
    assert leaks == []


def test_http_status_codes_and_problems_live_in_the_interface() -> None:
    outside = [p for layer in ("domain", "application", "infrastructure") for p in (PACKAGE / layer).rglob("*.py")]
    offenders = [str(p.relative_to(ROOT)) for p in outside
                 if "STATUS_CODE_FOR" in p.read_text(encoding="utf-8") or "class Problem" in p.read_text("utf-8")]
    assert offenders == []


def test_the_event_contract_and_the_add_ons_stay_apart_from_the_core() -> None:
    """Add-ons depend on the published contract (and the shared HTTP, caller and trigger plumbing), never on order
    internals; the contract itself depends on nothing of the Order Service."""
    allowed_for_addons = ("order_functions.contracts", "order_functions.addons",
                          "order_functions.interface.http_support", "order_functions.interface.problems",
                          "order_functions.interface.auth", "order_functions.interface.batch_spans",
                          "order_functions.application.identity")
    checks = [(PACKAGE / "contracts", ()), (PACKAGE / "addons", allowed_for_addons)]
    leaks = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder, allowed in checks
        for path in sorted(folder.rglob("*.py"))
        for name in sorted(imported_modules(path))
        if name.startswith("order_functions") and not any(name == ok or name.startswith(ok + ".") for ok in allowed)
    ]
    assert leaks == []


def test_the_interface_calls_use_cases_not_adapters() -> None:
    """`OrderServices.adapters` is there for integration tests to arrange data; the interface must not use it."""
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((PACKAGE / "interface").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in {"adapters", "pool", "bus", "inventory"}
    ]
    assert offenders == []
