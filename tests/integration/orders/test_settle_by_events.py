"""Settlement by events against the real inventory (its outbox relay), the real local bus and PostgreSQL: the
inventory's decision settles a 202 order without a VerifyOrder; the catalogue copy follows stock events and answers
while the Gremlin delays the inventory; shipping; a poison event dead-letters."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from azure.functions.timer import TimerRequest

from inventory_service.middleware.chaos import ChaosSettings
from tests.support.inventory import InventoryHarness, running_inventory
from tests.support.orders import FUNCTIONS, OrderHarness, call, http_request, order_app
from valerix_common.bus.messages import OutgoingMessage
from valerix_common.embedded_pg import EmbeddedPostgres
from valerix_common.local_bus import RESERVATION_EVENTS_TOPIC, LocalTopic


@pytest.fixture
def orders_db_url(own_orders_db_url: str) -> str:
    """Its own orders database (and bus): the catalogue copy there then mirrors this module's inventory only."""
    return own_orders_db_url


@pytest.fixture
async def evented(pg_server: EmbeddedPostgres | None, orders_db_url: str) -> AsyncIterator[OrderHarness]:
    """A fresh inventory whose relay publishes to the local bus in the orders database, and the order app on it."""
    if pg_server is None:
        pytest.skip("needs the embedded PostgreSQL server")
    inventory_db = pg_server.create_database(f"inventory_events_{uuid.uuid4().hex[:8]}", "inventory_svc")
    async with running_inventory(inventory_db, bus_url=orders_db_url) as inventory, \
            order_app(inventory, orders_db_url, LOCAL_BUS_DATABASE_URL=orders_db_url) as orders:
        await orders.deliver_events(max_wait_s=0.5)  # what the start-up (seed) published
        yield orders


def gremlin(inventory: InventoryHarness, delay_s: float) -> None:
    inventory.running.chaos.update(ChaosSettings(gremlin_enabled=True, min_delay_s=delay_s, max_delay_s=delay_s))


async def get_order(order_id: str) -> dict:  # type: ignore[type-arg]
    status, body, _ = await call("get_order", http_request("GET", "x", route_params={"order_id": order_id}))
    assert status == 200
    return body


async def test_a_202_order_is_confirmed_by_the_event_before_any_verify_order(evented: OrderHarness) -> None:
    inventory = evented.inventory
    product = await inventory.new_product(5)
    gremlin(inventory, 3.0)  # longer than the 2 s checkout budget
    try:
        status, body, _ = await evented.checkout([(product, 2)])
        assert status == 202 and body["status"] == "pending"
        assert "still confirming" in body["message"]
        await evented.deliver_events(max_wait_s=6, until_order=body["order_id"], until_type="reserved")
    finally:
        inventory.running.chaos.update(ChaosSettings())
    assert evented.event_failures == []
    settled = await get_order(body["order_id"])
    assert settled["status"] == "confirmed" and settled["settled_via"] == "reservation-event", settled
    assert settled["message"].startswith("Your order is confirmed")
    # the VerifyOrder intent is still queued, undelivered: the event settled the order without it
    verify = await (await evented.queue()).stats()
    assert verify["active"] + verify.get("scheduled", 0) >= 1, verify
    rows = evented.sql(
        "SELECT event_type, effect FROM consumed_events WHERE order_id = %s", uuid.UUID(body["order_id"]))
    assert rows == [("reservation.reserved", "applied")]
    # VerifyOrder arriving later finds the order settled and asks the inventory nothing new
    assert int(inventory.sql("SELECT count(*) FROM reservations WHERE order_id = %s", body["order_id"])[0][0]) == 1
    await evented.deliver_verify()
    assert (await get_order(body["order_id"]))["settled_via"] == "reservation-event"


async def test_a_redelivered_event_is_applied_once(evented: OrderHarness) -> None:
    product = await evented.inventory.new_product(3)
    status, body, _ = await evented.checkout([(product, 1)])
    assert status == 201
    subscription = await evented.event_subscription()
    found = False
    for _ in range(20):  # take the decision's message once, give it back: delivered again, as after a crash
        for m in await subscription.receive_wait(20, max_wait_s=1, poll_interval_s=0.1):
            found = found or (m.application_properties.get("order_id") == body["order_id"]
                              and m.application_properties.get("type") == "reservation.reserved")
            await subscription.abandon(m.lock_token)
        if found:
            break
    assert found
    await evented.deliver_events(max_wait_s=5, until_order=body["order_id"], until_type="reserved")
    effects = evented.sql("SELECT effect FROM consumed_events WHERE order_id = %s", uuid.UUID(body["order_id"]))
    assert effects == [("no-op",)]  # the HTTP reply had settled it; the event, delivered twice, recorded once
    assert evented.sql("SELECT count(*) FROM order_events WHERE order_id = %s", uuid.UUID(body["order_id"])) == [(2,)]


async def test_products_answer_from_the_copy_under_the_gremlin_and_follow_stock_events(
    evented: OrderHarness,
) -> None:
    inventory = evented.inventory
    status, first, _ = await call("list_products", http_request("GET", "products"))
    assert status == 200 and first["source"] == "inventory"  # a fresh copy takes a full listing first
    product = await inventory.new_product(7)
    await evented.deliver_events(max_wait_s=1)
    status, _, _ = await evented.checkout([(product, 3)])
    assert status == 201
    await evented.deliver_events(max_wait_s=1)
    gremlin(inventory, 5.0)
    try:
        async with evented.counting_listings() as asked:
            status, listing, _ = await call("list_products", http_request("GET", "products"))
    finally:
        inventory.running.chaos.update(ChaosSettings())
    assert status == 200 and listing["source"] == "copy" and listing["as_of"], listing
    assert asked == []  # the delayed inventory was not asked
    [row] = [p for p in listing["products"] if p["product_id"] == product]
    assert (row["available"], row["reserved"], row["price_cents"]) == (4, 3, None)  # events carry no prices
    await FUNCTIONS["refresh_catalogue"](TimerRequest(past_due=False))  # the periodic full refresh fills them in
    _, listing, _ = await call("list_products", http_request("GET", "products"))
    [row] = [p for p in listing["products"] if p["product_id"] == product]
    assert (row["available"], row["reserved"], row["price_cents"]) == (4, 3, 100)
    truth = dict(inventory.sql("SELECT product_id, available FROM products"))
    copy = dict(evented.sql("SELECT product_id, available FROM catalogue WHERE product_id = ANY(%s)", list(truth)))
    assert copy == truth
    status, problem, _ = await evented.checkout([("NO-SUCH-PRODUCT", 1)])
    assert status == 422 or status == 404 or status == 400, problem
    assert "NO-SUCH-PRODUCT" in json.dumps(problem)


async def test_a_copy_that_only_heard_stock_events_answers_at_once_as_incomplete_then_lists_in_the_background(
    evented: OrderHarness,
) -> None:
    """A fresh orders database hears a restock before any full listing. Under a 3 s Gremlin the listing does not
    wait for the inventory: it gives what the copy has, says it is incomplete, and a background listing (with the
    refresh's longer timeout) completes it."""
    inventory = evented.inventory
    product = await inventory.new_product(7)
    await evented.deliver_events(max_wait_s=2)
    assert evented.sql("SELECT product_id FROM catalogue") == [(product,)]
    gremlin(inventory, 3.0)
    try:
        status, first, _ = await call("list_products", http_request("GET", "products"))
        assert status == 200 and first["source"] == "copy" and first["complete"] is False, first
        assert [p["product_id"] for p in first["products"]] == [product]
        listing = first
        for _ in range(100):  # bounded: 10 s for the background listing through the Gremlin
            await asyncio.sleep(0.1)
            _, listing, _ = await call("list_products", http_request("GET", "products"))
            if listing["complete"]:
                break
    finally:
        inventory.running.chaos.update(ChaosSettings())
    assert listing["complete"] is True and listing["source"] == "copy"
    truth = sorted(r[0] for r in inventory.sql("SELECT product_id FROM products"))
    assert sorted(p["product_id"] for p in listing["products"]) == truth and len(truth) > 1
    assert evented.sql("SELECT count(*) FROM catalogue_listing") == [(1,)]


async def test_ship_a_confirmed_order_then_it_cannot_be_cancelled(evented: OrderHarness) -> None:
    inventory = evented.inventory
    product = await inventory.new_product(4)
    status, body, _ = await evented.checkout([(product, 2)])
    assert status == 201
    route = {"order_id": body["order_id"]}
    status, shipped, headers = await call("ship_order", http_request("POST", "x", route_params=route))
    assert status == 200 and shipped["status"] == "shipped" and "shipped" in shipped["message"]
    assert "Idempotent-Replayed" not in headers
    status, again, headers = await call("ship_order", http_request("POST", "x", route_params=route))
    assert status == 200 and again["status"] == "shipped" and headers.get("Idempotent-Replayed") == "true"
    status, problem, _ = await call("cancel_order", http_request("POST", "x", route_params=route))
    assert status == 409 and problem["order"]["status"] == "shipped", problem
    assert inventory.sql("SELECT available, shipped FROM products WHERE product_id = %s", product) == [(2, 2)]
    await evented.deliver_events(max_wait_s=5, until_order=body["order_id"], until_type="shipped")
    effects = evented.sql("SELECT event_type, effect FROM consumed_events WHERE order_id = %s ORDER BY consumed_at",
                          uuid.UUID(body["order_id"]))
    assert ("reservation.shipped", "no-op") in effects, (effects, evented.event_failures)
    # a pending order does not ship
    gremlin(inventory, 2.5)
    try:
        status, pending, _ = await evented.checkout([(product, 1)])
    finally:
        inventory.running.chaos.update(ChaosSettings())
    if status == 202:
        status, problem, _ = await call("ship_order", http_request("POST", "x",
                                                                   route_params={"order_id": pending["order_id"]}))
        assert status == 409 and problem["order"]["status"] == "pending"


async def test_a_poison_event_dead_letters_and_changes_nothing(evented: OrderHarness) -> None:
    pool = (await evented.resources()).bus_pool
    assert pool is not None
    before = evented.count("consumed_events")
    await LocalTopic(pool, RESERVATION_EVENTS_TOPIC).send(
        OutgoingMessage(message_id=f"poison-{uuid.uuid4()}", body=b'{"type": "reservation.reserved"}'))
    for _ in range(3):  # the subscription's max delivery count in this harness
        await evented.deliver_events(max_wait_s=1)
    subscription = await evented.event_subscription()
    await subscription.receive()  # the receive that finds it over its count moves it to the dead-letter store
    stats = await subscription.stats()
    assert stats["dead_lettered"] >= 1 and len(evented.event_failures) == 3, (stats, evented.event_failures)
    assert evented.count("consumed_events") == before
