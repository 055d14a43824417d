"""The checkout API called as Python functions (as the Functions host calls them), against real servers."""

from __future__ import annotations

import asyncio
import uuid

from inventory_service.middleware.chaos import ChaosSettings
from tests.support.orders import OrderHarness, call, http_request, new_key


async def test_checkout_confirms_and_decrements(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(5)
    status, body, headers = await orders.checkout([(product, 2)])
    assert status == 201
    assert body["status"] == "confirmed" and body["settled_via"] == "inventory-reply"
    assert body["items"] == [{"product_id": product, "quantity": 2}]
    assert headers["Location"] == f"/api/orders/{body['order_id']}"
    assert orders.inventory.available(product) == 3
    status, fetched, _ = await call("get_order", http_request(
        "GET", f"orders/{body['order_id']}", route_params={"order_id": body["order_id"]}))
    assert status == 200 and fetched["status"] == "confirmed"


async def test_insufficient_stock_is_409_with_the_rejected_order(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(1)
    status, body, _ = await orders.checkout([(product, 3)])
    assert status == 409
    assert body["status"] == "rejected" and "insufficient stock" in body["reason"]
    assert orders.inventory.available(product) == 1


async def test_idempotency_key_replays_rejects_other_bodies_and_is_per_customer(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(10)
    key = new_key()
    first = await orders.checkout([(product, 1)], key=key)
    again = await orders.checkout([(product, 1)], key=key)
    assert first[0] == again[0] == 201
    assert again[1]["order_id"] == first[1]["order_id"]
    assert again[2].get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first[2]
    assert orders.inventory.available(product) == 9

    different = await orders.checkout([(product, 2)], key=key)
    assert different[0] == 422 and different[1]["type"].endswith("idempotency-key-reused")
    other_customer = await orders.checkout([(product, 1)], key=key, customer="c-2")
    assert other_customer[0] == 201 and other_customer[1]["order_id"] != first[1]["order_id"]
    assert orders.inventory.available(product) == 8


async def test_same_key_while_in_flight_is_409(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(10)
    key = new_key()
    orders.inventory.running.chaos.update(ChaosSettings(gremlin_enabled=True, min_delay_s=0.6, max_delay_s=0.6))
    try:
        slow = asyncio.ensure_future(orders.checkout([(product, 1)], key=key))
        await asyncio.sleep(0.3)
        status, body, _ = await orders.checkout([(product, 1)], key=key)
        assert status == 409 and body["type"].endswith("idempotency-in-flight")
        assert (await slow)[0] == 201
    finally:
        orders.inventory.running.chaos.update(ChaosSettings())
    replay = await orders.checkout([(product, 1)], key=key)
    assert replay[0] == 201 and replay[2].get("Idempotent-Replayed") == "true"
    assert orders.inventory.available(product) == 9


async def test_cancel_restores_stock_once_and_is_idempotent(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(4)
    _, order, _ = await orders.checkout([(product, 3)])
    route = {"order_id": order["order_id"]}
    for _ in range(2):
        status, body, _ = await call("cancel_order", http_request("POST", "x", route_params=route))
        assert status == 200 and body["status"] == "cancelled"
    assert orders.inventory.available(product) == 4
    assert orders.inventory.conservation_holds(product)


async def test_cancel_of_rejected_is_409_and_unknown_is_404(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(1)
    _, rejected, _ = await orders.checkout([(product, 5)])
    status, body, _ = await call("cancel_order", http_request(
        "POST", "x", route_params={"order_id": rejected["order_id"]}))
    assert status == 409 and body["status"] == 409
    status, body, _ = await call("cancel_order", http_request(
        "POST", "x", route_params={"order_id": str(uuid.uuid4())}))
    assert status == 404 and body["type"].endswith("order-not-found")


async def test_list_orders_filters_and_pages(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(10)
    customer = f"pager-{uuid.uuid4().hex[:6]}"
    ids = [(await orders.checkout([(product, 1)], customer=customer))[1]["order_id"] for _ in range(5)]
    status, page1, _ = await call("list_orders", http_request(
        "GET", "orders", params={"customer_id": customer, "limit": "3"}))
    assert status == 200 and len(page1["orders"]) == 3 and page1["next_cursor"]
    _, page2, _ = await call("list_orders", http_request(
        "GET", "orders", params={"customer_id": customer, "limit": "3", "cursor": page1["next_cursor"]}))
    seen = [o["order_id"] for o in page1["orders"] + page2["orders"]]
    assert seen == list(reversed(ids))
    _, confirmed, _ = await call("list_orders", http_request(
        "GET", "orders", params={"customer_id": customer, "status": "rejected"}))
    assert confirmed["orders"] == []
    status, bad, _ = await call("list_orders", http_request("GET", "orders", params={"status": "lost"}))
    assert status == 400 and bad["errors"][0]["field"] == "status"


async def test_products_and_health(orders: OrderHarness) -> None:
    status, body, _ = await call("list_products", http_request("GET", "products"))
    assert status == 200 and any(p["product_id"] == "VLX-KB-001" for p in body["products"])
    status, health, _ = await call("health", http_request("GET", "health"))
    assert status == 200, health
    assert {k: v["status"] for k, v in health["checks"].items()} == {
        "orders_database": "ok", "inventory": "ok", "bus": "ok"}
    assert health["checks"]["bus"]["kind"] == "local-queue"
