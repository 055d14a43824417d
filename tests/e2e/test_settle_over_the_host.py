"""Over HTTP through the local Functions host, which feeds the reservation-events subscription to its trigger as
it feeds verify-order: with a fixed Gremlin longer than the checkout budget, a 202 order is settled by the
inventory's event, and the catalogue answers from the copy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import function_app
from devstack.functions_host import FunctionsHost
from inventory_service.middleware.chaos import ChaosSettings
from order_functions.interface.app import build_app
from tests.support.identity import bearer
from tests.support.inventory import running_inventory
from tests.support.orders import OrderHarness, order_app
from valerix_common.embedded_pg import EmbeddedPostgres


@pytest.fixture
def orders_db_url(own_orders_db_url: str) -> str:
    """Its own orders database (and bus): the catalogue copy there then mirrors this module's inventory only."""
    return own_orders_db_url


@pytest.fixture
async def hosted(
    pg_server: EmbeddedPostgres | None, orders_db_url: str
) -> AsyncIterator[tuple[str, aiohttp.ClientSession, OrderHarness]]:
    if pg_server is None:
        pytest.skip("needs the embedded PostgreSQL server")
    inventory_db = pg_server.create_database(f"inventory_host_{uuid.uuid4().hex[:8]}", "inventory_svc")
    async with running_inventory(inventory_db, bus_url=orders_db_url) as inventory, \
            order_app(inventory, orders_db_url, LOCAL_BUS_DATABASE_URL=orders_db_url) as orders:
        host = FunctionsHost(build_app(), app_module=function_app, port=0, poll_interval_s=0.05)
        port = await host.start()
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                yield f"http://127.0.0.1:{port}/api", http, orders
        finally:
            await host.stop()


async def fetch(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    kwargs.setdefault("headers", bearer("alice", "ops"))  # the order's customer, with the ops role for /ship
    async with http.request(method, url, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_the_host_settles_a_202_order_from_the_reservation_event(
    hosted: tuple[str, aiohttp.ClientSession, OrderHarness],
) -> None:
    base, http, orders = hosted
    inventory = orders.inventory
    status, first = await fetch(http, "GET", f"{base}/products")
    assert status == 200 and first["source"] == "inventory"  # a fresh copy takes a full listing first
    product = await inventory.new_product(6)
    inventory.running.chaos.update(ChaosSettings(gremlin_enabled=True, min_delay_s=3.0, max_delay_s=3.0))
    try:
        order = {"customer_id": "alice", "items": [{"product_id": product, "quantity": 2}]}
        status, created = await fetch(http, "POST", f"{base}/orders", json=order)
        assert status == 202 and created["status"] == "pending", created
        settled = created
        for _ in range(100):  # bounded: 10 s
            await asyncio.sleep(0.1)
            _, settled = await fetch(http, "GET", f"{base}/orders/{created['order_id']}")
            if settled["status"] != "pending":
                break
        async with orders.counting_listings() as asked:
            status, listing = await fetch(http, "GET", f"{base}/products")
    finally:
        inventory.running.chaos.update(ChaosSettings())
    assert settled["status"] == "confirmed" and settled["settled_via"] == "reservation-event", settled
    transitions = orders.sql("SELECT to_status, via FROM order_events WHERE order_id = %s ORDER BY event_id",
                             uuid.UUID(created["order_id"]))
    assert transitions == [("pending", "checkout"), ("confirmed", "reservation-event")]
    assert status == 200 and listing["source"] == "copy", listing
    assert asked == []  # answered from the copy, not through the 3 s Gremlin
    [row] = [p for p in listing["products"] if p["product_id"] == product]
    assert row["available"] == 4
