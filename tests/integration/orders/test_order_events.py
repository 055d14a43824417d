"""Order events (topic order-events) and the notifications add-on, on the real local bus and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest

from devstack.functions_host import to_service_bus_message
from inventory_service.middleware.chaos import ChaosSettings
from order_functions.addons.notifications.functions import PoisonEvent
from order_functions.application.ports import OutgoingMessage
from order_functions.contracts.order_events import parse_event
from tests.support.inventory import InventoryHarness
from tests.support.orders import FUNCTIONS, OrderHarness, call, http_request, order_app
from valerix_common.local_bus import LocalQueue, subscription_queue

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")


async def subscription(orders: OrderHarness, **settings: Any) -> LocalQueue:
    pool = (await orders.resources()).bus_pool
    assert pool is not None
    return subscription_queue(pool, "order-events", "notifications", **settings)


async def deliver_events(orders: OrderHarness, *, twice: bool = False) -> list[dict[str, Any]]:
    """Relays the outbox, then feeds the subscription to the add-on like the host (complete on success); with
    `twice`, every message is handled a second time first, as a redelivery would."""
    await orders.relay_outbox(wait_due_s=0)
    queue = await subscription(orders)
    bodies: list[dict[str, Any]] = []
    for _ in range(100):  # bounded rounds; the subscription also holds earlier tests' events (shared database)
        batch = await queue.receive(max_messages=100)
        if not batch:
            break
        for message in batch:
            if twice:
                await FUNCTIONS["notify_customer"]([to_service_bus_message(message)])
            await FUNCTIONS["notify_customer"]([to_service_bus_message(message)])
            await queue.complete(message.lock_token)
            bodies.append(json.loads(message.body))
    return bodies


async def notifications(order_id: str) -> list[dict[str, Any]]:
    status, body, _ = await call(
        "order_notifications", http_request("GET", "x", route_params={"order_id": order_id})
    )
    assert status == 200
    return list(body["notifications"])


async def test_each_transition_publishes_one_event_in_order_with_its_context(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(5)
    status, created, _ = await orders.checkout([(product, 2)], customer="c-events")
    assert status == 201 and created["status"] == "confirmed"
    status, _, _ = await call("cancel_order", http_request(
        "POST", "x", route_params={"order_id": created["order_id"]}, customer="c-events", roles=()))
    assert status == 200
    events = [e for e in await deliver_events(orders) if e["order_id"] == created["order_id"]]
    assert [(e["type"], e["version"]) for e in events] == [
        ("order.placed", 1), ("order.confirmed", 2), ("order.cancelled", 3)
    ]
    assert {e["customer_id"] for e in events} == {"c-events"} and len({e["event_id"] for e in events}) == 3
    assert [e["order"]["from_status"] for e in events] == [None, "pending", "confirmed"]
    assert all(TRACEPARENT.match(e["traceparent"]) for e in events if e["traceparent"])
    assert all(parse_event(json.dumps(e).encode()).occurred_at.tzinfo is not None for e in events)
    # the outbox rows are the transitions, one each, and all were sent
    rows = orders.sql("SELECT type, sent_at IS NOT NULL FROM order_events WHERE order_id = %s ORDER BY version",
                      uuid.UUID(created["order_id"]))
    assert rows == [("order.placed", True), ("order.confirmed", True), ("order.cancelled", True)]


async def test_notifications_one_per_terminal_transition_even_when_delivered_twice(orders: OrderHarness) -> None:
    product = await orders.inventory.new_product(1)
    status, confirmed, _ = await orders.checkout([(product, 1)], customer="c-notify")
    assert status == 201
    status, rejected, _ = await orders.checkout([(product, 1)], customer="c-notify")
    assert status == 409 and rejected["status"] == "rejected"
    await deliver_events(orders, twice=True)
    [note] = await notifications(confirmed["order_id"])
    assert note["type"] == "order.confirmed" and "confirmed" in note["message"] and note["customer_id"] == "c-notify"
    [refusal] = await notifications(rejected["order_id"])
    assert refusal["type"] == "order.rejected" and "could not be filled" in refusal["message"]
    deliveries = orders.sql(
        "SELECT type, deliveries FROM notifications.processed_events WHERE order_id = ANY(%s) ORDER BY type",
        [uuid.UUID(confirmed["order_id"]), uuid.UUID(rejected["order_id"])],
    )
    assert sorted(t for t, _ in deliveries) == ["order.confirmed", "order.placed", "order.placed", "order.rejected"]
    assert {d for _, d in deliveries} == {2}  # every event came twice and was applied once
    status, listing, _ = await call(
        "customer_notifications", http_request("GET", "notifications", params={"customer_id": "c-notify"})
    )
    assert status == 200 and {n["order_id"] for n in listing["notifications"]} == {
        confirmed["order_id"], rejected["order_id"]
    }
    await _only_the_owner_or_ops_reads(confirmed["order_id"], rejected["order_id"])


async def _only_the_owner_or_ops_reads(*order_ids: str) -> None:
    """c-notify's notifications, read by c-notify and by another customer (the caller read them as an operator)."""
    status, own, _ = await call(
        "customer_notifications", http_request("GET", "notifications", customer="c-notify", roles=())
    )
    assert status == 200 and own["customer_id"] == "c-notify"
    assert {n["order_id"] for n in own["notifications"]} == set(order_ids)
    status, body, _ = await call("order_notifications", http_request(
        "GET", "x", route_params={"order_id": order_ids[0]}, customer="c-notify", roles=()))
    assert status == 200 and [n["type"] for n in body["notifications"]] == ["order.confirmed"]
    # another customer: somebody else's order reads as one without notifications, their listing is refused
    status, body, _ = await call("order_notifications", http_request(
        "GET", "x", route_params={"order_id": order_ids[0]}, customer="c-nosy", roles=()))
    assert status == 200 and body["notifications"] == []
    status, body, _ = await call("customer_notifications", http_request(
        "GET", "notifications", params={"customer_id": "c-notify"}, customer="c-nosy", roles=()))
    assert status == 403 and body["type"].endswith("forbidden")
    status, body, _ = await call(
        "customer_notifications", http_request("GET", "notifications", customer="c-nosy", roles=())
    )
    assert status == 200 and body["customer_id"] == "c-nosy" and body["notifications"] == []


async def test_a_poison_event_dead_letters_and_changes_nothing(orders: OrderHarness) -> None:
    resources = await orders.resources()
    before = orders.sql("SELECT count(*) FROM notifications.processed_events")
    await resources.events_bus.send(OutgoingMessage(message_id="poison-1", body=b'{"type": "order.confirmed"}'))
    queue = await subscription(orders, max_delivery_count=3)
    for _ in range(5):  # bounded: more rounds than the max delivery count
        batch = await queue.receive(max_messages=10)
        for message in batch:
            with pytest.raises(PoisonEvent):
                await FUNCTIONS["notify_customer"]([to_service_bus_message(message)])
            await queue.abandon(message.lock_token)
    [dead] = [d for d in await queue.dead_letters() if d["message_id"] == "poison-1"]
    assert dead["reason"] == "MaxDeliveryCountExceeded"
    assert orders.sql("SELECT count(*) FROM notifications.processed_events") == before


async def test_notification_routes_refuse_bad_input_as_problems(orders: OrderHarness) -> None:
    status, body, _ = await call(
        "order_notifications", http_request("GET", "x", route_params={"order_id": "not-a-uuid"})
    )
    assert status == 400 and body["status"] == 400 and body["type"].endswith("malformed-request")
    for bad in ("", "c" * 129):
        status, body, _ = await call(
            "customer_notifications", http_request("GET", "notifications", params={"customer_id": bad})
        )
        assert status == 422 and body["errors"][0]["field"] == "customer_id"
    status, body, _ = await call("customer_notifications", http_request("GET", "notifications", customer=None))
    assert status == 401


async def _outcome_when_done(orders: OrderHarness, order_id: str) -> str:
    for _ in range(200):  # bounded: 200 x 0.05 s
        [(outcome,)] = orders.sql("SELECT outcome FROM verify_outbox WHERE order_id = %s", uuid.UUID(order_id))
        if outcome:
            return str(outcome)
        await asyncio.sleep(0.05)
    return ""


async def test_the_process_relays_by_itself_a_202_is_handed_on_a_settled_order_skipped(
    inventory: InventoryHarness, orders_db_url: str
) -> None:
    """No reconciler and no explicit relay call: the kicks alone hand a 202 to verify-order once its budget has
    passed, and retire the verify intent of an order that settled in time."""
    async with order_app(inventory, orders_db_url, INVENTORY_TIMEOUT_SECONDS="1") as orders:
        product = await inventory.new_product(5)
        status, confirmed, _ = await orders.checkout([(product, 1)])
        assert status == 201
        inventory.running.chaos.update(ChaosSettings(gremlin_enabled=True, min_delay_s=1.5, max_delay_s=1.5))
        try:
            status, pending, _ = await orders.checkout([(product, 1)])
        finally:
            inventory.running.chaos.update(ChaosSettings())
        assert status == 202
        assert await _outcome_when_done(orders, pending["order_id"]) == "sent"
        assert await _outcome_when_done(orders, confirmed["order_id"]) == "skipped"
        queue = await orders.queue()
        assert f"verify-{pending['order_id']}" in [m.message_id for m in await queue.receive(max_messages=20)]


async def test_a_batch_is_applied_in_one_call_and_a_poison_message_in_it_fails_only_after_the_others(
    orders: OrderHarness,
) -> None:
    """The trigger takes batches: every readable event of the batch is applied once (a second copy of one inside the
    same batch too), then the unreadable one makes the call fail, so the batch is abandoned and comes back; the
    second time its applied events are recognised as duplicates and nothing is written twice."""
    product = await orders.inventory.new_product(5)
    placed = [await orders.checkout([(product, 1)], customer="c-batch") for _ in range(2)]
    assert [status for status, _, _ in placed] == [201, 201]
    await orders.relay_outbox(wait_due_s=0)
    resources = await orders.resources()
    poison_id = f"poison-{uuid.uuid4()}"
    await resources.events_bus.send(OutgoingMessage(message_id=poison_id, body=b'{"type": "order.confirmed"}'))
    queue = await subscription(orders)
    received = []
    for _ in range(20):  # bounded; the subscription also holds earlier tests' events (shared database)
        got = await queue.receive(max_messages=100)
        if not got:
            break
        received += got
    ids = {body["order_id"] for _, body, _ in placed}
    ours = [m for m in received if json.loads(m.body).get("order_id") in ids]
    [poison] = [m for m in received if m.message_id == poison_id]
    assert len(ours) == 4  # placed + confirmed, for each order
    batch = [to_service_bus_message(m) for m in [*ours, ours[1], poison]]
    for _ in range(2):  # the first delivery and its redelivery after the abandon
        with pytest.raises(PoisonEvent):
            await FUNCTIONS["notify_customer"](batch)
    for order_id in ids:
        assert [n["type"] for n in await notifications(order_id)] == ["order.confirmed"]
    deliveries = orders.sql(
        "SELECT deliveries FROM notifications.processed_events WHERE order_id = ANY(%s)", [uuid.UUID(i) for i in ids]
    )
    assert sorted(d for (d,) in deliveries) == [2, 2, 2, 2]  # each event applied once, then seen once again
    for m in received:
        await queue.complete(m.lock_token)
