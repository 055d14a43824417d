"""The published contract against the running stack: schemathesis generates requests from `GET /api/openapi.json`
(valid and invalid ones, bounded), sends them over loopback with a valid token, and every answer must be neither a
5xx nor outside the document (status, content type, body schema). Also: every registered route is in the document.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import function_app
from devstack.functions_host import FunctionsHost
from order_functions.interface.app import build_app
from order_functions.interface.openapi import openapi_document
from tests.support.identity import token
from tests.support.inventory import InventoryHarness
from tests.support.orders import order_app

EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
async def base_url(inventory: InventoryHarness, orders_db_url: str) -> AsyncIterator[str]:
    # chaos switches off (their 404 is documented): fuzzed settings must not slow the rest of the run down
    async with order_app(inventory, orders_db_url, ADMIN_API_ENABLED="false"):
        for stock in (50, 50):
            await inventory.new_product(stock, prefix="FUZZ")
        host = FunctionsHost(build_app(), app_module=function_app, port=0, poll_interval_s=0.05)
        port = await host.start()
        try:
            yield f"http://127.0.0.1:{port}/api"
        finally:
            await host.stop()


def test_every_http_route_is_in_the_document() -> None:
    documented = {re.sub(r"\{[^}]*\}", "{}", p.lstrip("/")) for p in openapi_document()["paths"]}
    for function in build_app().get_functions():
        trigger = function.get_trigger()
        if function.is_http_function() and trigger is not None:
            route = re.sub(r"\{[^}]*\}", "{}", str(getattr(trigger, "route", "")).strip("/"))
            assert route in documented, f"route {route} ({function.get_function_name()}) is not documented"


def fuzz(base: str, bearer: str) -> dict[str, int]:
    """Runs in a worker thread (schemathesis is synchronous) while the event loop keeps serving the stack."""
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {"Authorization": f"Bearer {bearer}"}
    seen: dict[str, int] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if operation.path.startswith("/dashboard"):
            continue  # static files: covered by the dashboard tests, and not part of the JSON API
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run_cases(operation, mode, base, headers, seen)
    return seen


def run_cases(operation: Any, mode: GenerationMode, base: str, headers: dict[str, str], seen: dict[str, int]) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(base_url=base, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)
        key = f"{label} {response.status_code}"
        seen[key] = seen.get(key, 0) + 1

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        seen[f"{label} (nothing to make invalid)"] = 0  # e.g. GET /health: no parameter, no body


@pytest.mark.timeout(600)
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")  # schemathesis internals
async def test_fuzzing_the_running_stack_finds_no_5xx_and_nothing_undocumented(base_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/openapi.json") as resp:
        assert resp.status == 200  # anonymous
    seen = await asyncio.to_thread(fuzz, base_url, token("fuzzer", "ops"))
    print("schemathesis answers (operation status: count):", dict(sorted(seen.items())))
    operations = {k.rsplit(" ", 1)[0] for k in seen}
    assert {"POST /orders", "GET /orders", "GET /orders/{order_id}", "POST /orders/{order_id}/cancel"} <= operations
