"""The metrics a dashboard needs, recorded by the same flows the trace tests drive."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from azure.functions.servicebus import ServiceBusMessage

from order_functions.application.verify_queue import verify_message
from order_functions.infrastructure import metrics as order_metrics
from tests.integration.telemetry import checkout_with_traceparent, session, slow_checkout, traced_stack
from tests.support.orders import FUNCTIONS


def _total(points: dict[str, list[Any]], name: str, **attributes: Any) -> float:
    """Sum (counters) or count (histograms) over the data points whose attributes include `attributes`."""
    total = 0.0
    for point in points.get(name, []):
        if all((point.attributes or {}).get(k) == v for k, v in attributes.items()):
            total += point.count if hasattr(point, "bucket_counts") else point.value
    return total


async def test_order_flows_record_outcomes_latency_deadline_misses_and_gauges(
    inventory_db_url: str, orders_db_url: str
) -> None:
    telemetry = session()
    before = telemetry.metrics()
    # a budget a loaded machine still meets on the fast path, and a Gremlin well past it for the slow one
    async with traced_stack(telemetry, inventory_db_url, orders_db_url, INVENTORY_TIMEOUT_SECONDS="1.0") as (
        inventory, orders,
    ):
        product = await inventory.new_product(5)
        fast = await checkout_with_traceparent(orders, product)
        assert fast.status == 201, fast.body
        slow = await slow_checkout(inventory, orders, product, delay_s=1.6)
        # a redelivery of the settled order's message: counted, then completed as a no-op
        message = verify_message(uuid.UUID(slow.body["order_id"]), 1)
        await FUNCTIONS["verify_order"](ServiceBusMessage(
            body=message.body, message_id=message.message_id, delivery_count=2,
            application_properties=dict(message.application_properties), user_properties={},
        ))
        resources = await orders.resources()
        await order_metrics.refresh_gauges(resources.pool, resources.bus)
        await asyncio.sleep(1.2)  # the Gremlin's late call lands before the server stops
    after = telemetry.metrics()

    def delta(name: str, **attributes: Any) -> float:
        return _total(after, name, **attributes) - _total(before, name, **attributes)

    assert delta("valerix.orders.outcomes", status="confirmed", settled_via="inventory-reply") >= 1
    assert delta("valerix.orders.outcomes", status="confirmed", settled_via="verify-order") >= 1
    assert delta("valerix.inventory.deadline_misses", **{"rpc.method": "ReserveStock"}) >= 1
    ok = {"rpc.method": "ReserveStock", "rpc.response.status_code": "OK"}
    missed = {"rpc.method": "ReserveStock", "rpc.response.status_code": "DEADLINE_EXCEEDED"}
    assert delta("valerix.inventory.call.duration", **ok) >= 2  # the fast checkout and VerifyOrder's call
    assert delta("valerix.inventory.call.duration", **missed) >= 1
    assert delta("valerix.gremlin.delay") >= 1  # inventory side: the injected 1.6 s
    assert max(p.max for p in after["valerix.gremlin.delay"]) >= 1.6
    assert delta("valerix.verify.redeliveries") >= 1
    [age] = after["valerix.orders.oldest_pending_age"]
    assert age.value >= 0
    [dead] = after["valerix.verify.dead_lettered"]
    assert dead.value >= 0 and dead.attributes == {"queue": "verify-order"}
