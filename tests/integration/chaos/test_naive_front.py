"""The naive comparison front really is naive: against the real inventory, a timeout is told as a failure while
the late call still takes the stock, and a retry with the same key is a second order."""

from __future__ import annotations

import asyncio

import aiohttp
import psycopg
from aiohttp.test_utils import TestServer

from devstack.chaos.naive.app import naive_app
from devstack.identity import ORDER_SERVICE_CLIENT_ID
from devstack.identity.settings import INVENTORY_AUDIENCE
from inventory_service.middleware.chaos import ChaosSettings
from tests.support.identity import issuer
from tests.support.inventory import InventoryHarness
from valerix_common.db import make_pool


async def test_timeout_is_told_as_failure_yet_stock_is_taken_and_retries_duplicate(
    inventory: InventoryHarness, orders_db_url: str
) -> None:
    product = await inventory.new_product(5)
    pool = make_pool(orders_db_url, name="naive-test", min_size=1, max_size=4)
    # it calls the inventory as the Order Service, the only caller the inventory admits
    token = issuer().minter.mint(ORDER_SERVICE_CLIENT_ID, INVENTORY_AUDIENCE, application=True)
    server = TestServer(naive_app(pool, inventory.target, timeout_s=0.3,
                                  metadata=(("authorization", f"Bearer {token}"),)), host="127.0.0.1")
    await server.start_server()
    inventory.running.chaos.update(ChaosSettings(gremlin_enabled=True, min_delay_s=1.0, max_delay_s=1.0))
    try:
        order = {"customer_id": "naive-c1", "items": [{"product_id": product, "quantity": 2}]}
        headers = {"Idempotency-Key": "naive-key-1"}
        async with aiohttp.ClientSession() as http:
            for _ in range(2):  # the customer is told "failed" and tries again, same key
                async with http.post(server.make_url("/api/orders"), json=order, headers=headers) as resp:
                    assert resp.status == 503 and (await resp.json())["status"] == "failed"
        inventory.running.chaos.update(ChaosSettings())
        for _ in range(60):  # the held calls land after their delay
            if inventory.available(product) == 1:
                break
            await asyncio.sleep(0.05)
        assert inventory.available(product) == 1, "both 'failed' orders took their stock"
        with psycopg.connect(orders_db_url) as conn:
            rows = conn.execute("SELECT status FROM naive_orders WHERE request_key = 'naive-key-1'").fetchall()
        assert [r[0] for r in rows] == ["failed", "failed"], "one request key, two orders: no idempotency"
    finally:
        inventory.running.chaos.update(ChaosSettings())
        await server.close()
