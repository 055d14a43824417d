"""End to end over HTTP: the same FunctionApp served by the local runner, real inventory, real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import function_app
from devstack.functions_host import FunctionsHost
from inventory_service.middleware.chaos import ChaosSettings
from order_functions.interface.app import build_app
from tests.support.identity import bearer
from tests.support.inventory import InventoryHarness
from tests.support.orders import OrderHarness, new_key, order_app


class Api:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http

    async def request(self, method: str, path: str, *, who: str = "alice", roles: tuple[str, ...] = ("ops",),
                      **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        """Signed in as `who` (an operator by default, so the walk-through may read statistics too)."""
        kwargs["headers"] = {**bearer(who, *roles), **kwargs.get("headers", {})}
        async with self.http.request(method, f"{self.base}{path}", **kwargs) as resp:
            body = await resp.json(content_type=None) if await resp.read() else None
            return resp.status, body, resp


@pytest.fixture
async def stack(inventory: InventoryHarness, orders_db_url: str) -> AsyncIterator[tuple[Api, OrderHarness]]:
    async with order_app(inventory, orders_db_url) as orders:
        host = FunctionsHost(build_app(), app_module=function_app, port=0, poll_interval_s=0.05)
        port = await host.start()
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                yield Api(f"http://127.0.0.1:{port}/api", http), orders
        finally:
            await host.stop()


async def test_readme_walkthrough_over_http(stack: tuple[Api, OrderHarness]) -> None:
    api, orders = stack
    product = await orders.inventory.new_product(5)
    key = new_key()
    order = {"customer_id": "alice", "items": [{"product_id": product, "quantity": 2}]}
    status, created, resp = await api.request("POST", "/orders", json=order, headers={"Idempotency-Key": key})
    assert status == 201 and created["status"] == "confirmed"
    location = resp.headers["Location"]
    status, replay, resp = await api.request("POST", "/orders", json=order, headers={"Idempotency-Key": key})
    assert status == 201 and replay["order_id"] == created["order_id"]
    assert resp.headers["Idempotent-Replayed"] == "true"
    status, fetched, _ = await api.request("GET", location.removeprefix("/api"))
    assert status == 200 and fetched["order_id"] == created["order_id"]
    status, cancelled, _ = await api.request("POST", f"/orders/{created['order_id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    assert orders.inventory.available(product) == 5
    status, products, _ = await api.request("GET", "/products")
    assert status == 200 and any(p["product_id"] == product and p["available"] == 5 for p in products["products"])
    status, listing, _ = await api.request("GET", "/orders", params={"customer_id": "alice", "limit": "5"})
    assert status == 200 and listing["orders"][0]["order_id"] == created["order_id"]
    status, health, _ = await api.request("GET", "/health")
    assert status == 200 and health["status"] == "ok"


async def test_gremlin_202_then_confirmed_through_the_bus_over_http(stack: tuple[Api, OrderHarness]) -> None:
    api, orders = stack
    product = await orders.inventory.new_product(5)
    orders.inventory.running.chaos.update(ChaosSettings(gremlin_enabled=True, min_delay_s=2.2, max_delay_s=2.6))
    try:
        started = time.monotonic()
        status, pending, resp = await api.request(
            "POST", "/orders", json={"customer_id": "bob", "items": [{"product_id": product, "quantity": 1}]}, who="bob"
        )
        answered = time.monotonic() - started
        assert status == 202 and pending["status"] == "pending", pending
        assert answered < 2.6, answered
        location = resp.headers["Location"].removeprefix("/api")
        assert int(resp.headers["Retry-After"]) >= 1
        final = pending
        for _ in range(100):  # bounded: 100 polls x 0.2 s
            status, final, _ = await api.request("GET", location)
            if final["status"] != "pending":
                break
            await asyncio.sleep(0.2)
    finally:
        orders.inventory.running.chaos.update(ChaosSettings())
    assert final["status"] == "confirmed" and final["settled_via"] == "verify-order"
    await asyncio.sleep(0.5)
    assert orders.inventory.available(product) == 4 and orders.inventory.conservation_holds(product)


async def test_errors_over_http_are_problem_json(stack: tuple[Api, OrderHarness]) -> None:
    api, orders = stack
    before = orders.count("orders")
    async with api.http.post(f"{api.base}/orders", data=b"{oops",
                             headers={"Content-Type": "application/json", **bearer("alice")}) as r:
        assert r.status == 400 and r.headers["Content-Type"].startswith("application/problem+json")
        assert (await r.json(content_type=None))["title"] == "Malformed JSON"
    status, body, _ = await api.request("GET", "/orders/not-a-uuid")
    assert status == 400 and body["errors"][0]["field"] == "order_id"
    status, _, _ = await api.request("GET", "/no-such-route")
    assert status == 404
    assert orders.count("orders") == before
    status, stats, _ = await api.request("GET", "/stats/latency")
    assert status == 200 and stats["window_s"] == 30.0 and stats["state"] in {"OK", "SLOW"}
