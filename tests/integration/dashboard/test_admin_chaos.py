"""The dashboard's chaos admin endpoint (`admin_chaos`, GET/POST /api/ops/chaos), called as the host would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from inventory_service.middleware.chaos import ChaosSettings
from protos import inventory_pb2 as pb
from tests.support.inventory import InventoryHarness
from tests.support.orders import FUNCTIONS, OrderHarness, call, http_request, order_app

ROUTE = "ops/chaos"


async def inventory_chaos(inventory: InventoryHarness) -> pb.ChaosSettings:
    return await inventory.stub.GetChaos(pb.GetChaosRequest(), timeout=5)


@pytest.fixture
async def reset_chaos(inventory: InventoryHarness) -> AsyncIterator[None]:
    inventory.running.chaos.update(ChaosSettings())
    try:
        yield
    finally:
        inventory.running.chaos.update(ChaosSettings())


@pytest.fixture
async def enabled(inventory: InventoryHarness, orders_db_url: str, reset_chaos: None) -> AsyncIterator[OrderHarness]:
    async with order_app(inventory, orders_db_url, ADMIN_API_ENABLED="true") as harness:
        yield harness


async def chaos_call(method: str, body: Any = None, raw: bytes | None = None) -> tuple[int, dict[str, Any], str]:
    resp = await FUNCTIONS["admin_chaos"](http_request(method, ROUTE, body, raw=raw))
    return resp.status_code, (json.loads(resp.get_body()) if resp.get_body() else {}), resp.mimetype


@pytest.mark.parametrize("flag", [None, "false"])
async def test_disabled_admin_api_is_a_404_problem_and_changes_nothing(
    inventory: InventoryHarness, orders_db_url: str, reset_chaos: None, flag: str | None, monkeypatch: Any,
) -> None:
    monkeypatch.delenv("ADMIN_API_ENABLED", raising=False)
    overrides = {"ADMIN_API_ENABLED": flag} if flag is not None else {}
    before = await inventory_chaos(inventory)
    async with order_app(inventory, orders_db_url, **overrides):
        for method, body in (("GET", None), ("POST", {"gremlin_enabled": True, "min_delay_s": 0, "max_delay_s": 0})):
            status, problem, mimetype = await chaos_call(method, body)
            assert status == 404 and mimetype == "application/problem+json", problem
            assert problem["status"] == 404 and problem["type"].endswith("admin-api-disabled")
    assert await inventory_chaos(inventory) == before
    assert inventory.running.chaos.settings == ChaosSettings()


async def test_enabled_get_reads_and_post_changes_the_inventory_chaos(
    enabled: OrderHarness, inventory: InventoryHarness
) -> None:
    status, current, mimetype = await chaos_call("GET")
    assert status == 200 and mimetype == "application/json"
    assert current == {"gremlin_enabled": False, "min_delay_s": 2.0, "max_delay_s": 5.0, "pattern": "random",
                       "crash_rate": 0.0}

    wanted = {"gremlin_enabled": True, "min_delay_s": 0.05, "max_delay_s": 0.1, "pattern": "every:3",
              "crash_rate": 0}
    status, applied, _ = await chaos_call("POST", wanted)
    assert status == 200, applied
    assert applied == {**wanted, "crash_rate": 0.0}
    assert inventory.running.chaos.settings == ChaosSettings(
        gremlin_enabled=True, min_delay_s=0.05, max_delay_s=0.1, pattern="every:3", crash_rate=0.0
    )
    reply = await inventory_chaos(inventory)
    assert reply.gremlin_enabled and reply.gremlin_pattern == "every:3"

    # a partial update keeps the other fields; '' means random
    status, applied, _ = await chaos_call("POST", {"gremlin_enabled": False, "pattern": ""})
    assert status == 200 and applied["gremlin_enabled"] is False and applied["pattern"] == "random"
    assert applied["min_delay_s"] == 0.05 and applied["max_delay_s"] == 0.1
    assert inventory.running.chaos.settings.gremlin_enabled is False

    status, applied, _ = await chaos_call("POST", {"crash_rate": 0.25})
    assert status == 200 and inventory.running.chaos.settings.crash_rate == 0.25
    status, applied, _ = await chaos_call("POST", {"crash_rate": 0})
    assert status == 200 and inventory.running.chaos.settings == ChaosSettings(
        min_delay_s=0.05, max_delay_s=0.1, pattern="random"
    )


@pytest.mark.parametrize(
    ("body", "raw", "status", "field"),
    [
        (None, b"{not json", 400, ""),
        (None, b"", 400, ""),
        ([1, 2], None, 400, ""),
        ("on", None, 400, ""),
        ({}, None, 422, ""),
        ({"gremlin_enabled": "yes"}, None, 422, "gremlin_enabled"),
        ({"gremlin_enabled": 1}, None, 422, "gremlin_enabled"),
        ({"min_delay_s": -1}, None, 422, "min_delay_s"),
        ({"max_delay_s": 61}, None, 422, "max_delay_s"),
        ({"min_delay_s": "1"}, None, 422, "min_delay_s"),
        ({"min_delay_s": True}, None, 422, "min_delay_s"),
        ({"min_delay_s": 3, "max_delay_s": 2}, None, 422, "min_delay_s"),
        ({"min_delay_s": 6}, None, 422, "min_delay_s"),  # above the current max (5 s)
        ({"pattern": "sometimes"}, None, 422, "pattern"),
        ({"pattern": "every:0"}, None, 422, "pattern"),
        ({"pattern": 3}, None, 422, "pattern"),
        ({"crash_rate": 1.5}, None, 422, "crash_rate"),
        (None, b'{"crash_rate": NaN}', 400, "body"),  # not JSON at all: the strict parser refuses it
        ({"gremlin_enabled": True, "delay": 1}, None, 422, "delay"),
        (None, b'{"pattern": "' + b"x" * 5000 + b'"}', 413, ""),
    ],
)
async def test_bad_bodies_are_problems_and_change_nothing(
    enabled: OrderHarness, inventory: InventoryHarness, body: Any, raw: bytes | None, status: int, field: str
) -> None:
    before = inventory.running.chaos.settings
    got, problem, mimetype = await chaos_call("POST", body, raw)
    assert got == status and mimetype == "application/problem+json", problem
    assert problem["status"] == status and problem["title"] and problem["detail"]
    if field:
        assert field in {e["field"] for e in problem["errors"]}, problem
    assert inventory.running.chaos.settings == before


async def test_refused_by_the_inventory_without_admin_token_is_a_503_problem(
    inventory: InventoryHarness, orders_db_url: str, reset_chaos: None
) -> None:
    async with order_app(inventory, orders_db_url, ADMIN_API_ENABLED="true", INVENTORY_ADMIN_TOKEN="wrong"):
        status, problem, mimetype = await chaos_call("POST", {"gremlin_enabled": True})
    assert status == 503 and mimetype == "application/problem+json", problem
    assert problem["type"].endswith("chaos-admin-refused")
    assert inventory.running.chaos.settings == ChaosSettings()


async def test_bus_stats_show_the_local_queue(enabled: OrderHarness) -> None:
    status, body, _ = await call("bus_stats", http_request("GET", "stats/bus"))
    assert status == 200 and body["kind"] == "local-queue" and body["queue"] == "verify-order"
    assert set(body["stats"]) >= {"active", "locked", "scheduled", "dead_lettered", "completed", "redeliveries"}
