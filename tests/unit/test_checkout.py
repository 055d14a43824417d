"""Checkout on fakes: the fast path, the hand-over to the outbox, one deadline for the answer, idempotency and
refusals."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from order_functions.application.checkout import record_reserve_s
from order_functions.application.errors import (
    CheckoutTimedOut,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    UnknownProduct,
)
from order_functions.application.ports import InventoryRefused, ReservationOutcome, ReservationStatus
from order_functions.application.transitions import new_event
from order_functions.domain.models import OrderStatus, SettledVia
from order_functions.interface.problems import problem_for
from tests.unit.conftest import World, build_world
from tests.unit.fakes import config, request


async def test_inventory_answer_in_time_confirms(world: World) -> None:
    result = await world.services.checkout(request("c-1", ("P-1", 2)), None)
    assert result.order.status is OrderStatus.CONFIRMED and not result.replayed
    assert result.order.settled_via is SettledVia.INVENTORY_REPLY
    assert world.inventory.reserved == [result.order.order_id]
    assert world.metrics.outcomes == [("confirmed", "inventory-reply")]
    assert world.metrics.calls == ["ReserveStock"] and world.bus.sent == []


async def test_insufficient_stock_rejects_with_the_inventory_reason(world: World) -> None:
    world.inventory.reserve_answer = ReservationOutcome(ReservationStatus.REJECTED, "P-1: 0 available")
    result = await world.services.checkout(request(), None)
    assert result.order.status is OrderStatus.REJECTED and result.order.reason == "P-1: 0 available"


async def test_refusal_by_inventory_is_a_final_rejection(world: World) -> None:
    world.inventory.reserve_answer = InventoryRefused("NOT_FOUND", "P-1 vanished")
    result = await world.services.checkout(request(), None)
    assert result.order.status is OrderStatus.REJECTED
    assert result.order.reason == "refused by inventory: P-1 vanished"


async def test_unknown_product_is_refused_before_anything_is_written(world: World) -> None:
    with pytest.raises(UnknownProduct) as refused:
        await world.services.checkout(request("c-1", ("P-1", 1), ("NOPE", 1)), "k-1")
    assert refused.value.product_ids == ["NOPE"]
    assert world.store.orders == {} and world.store.keys == {} and world.inventory.reserved == []


async def test_no_answer_in_time_leaves_it_pending_and_hands_it_to_the_outbox(world: World) -> None:
    await world.services.products.list()  # warm catalogue: the inventory then goes quiet
    world.inventory.down = True
    result = await world.services.checkout(request(), "k-slow")
    order = result.order
    assert order.status is OrderStatus.PENDING
    assert world.bus.sent == []  # nothing was sent on the request path ...
    # ... the verify intent was written with the order, due when the budget ends, and the relay was asked to run
    assert world.store.verify_due[order.order_id] == order.created_at + timedelta(seconds=2.0)
    assert len(world.outbox.kicks) == 1 and 0 <= world.outbox.kicks[0] <= 2.0
    assert world.store.keys[("c-1", "k-slow")].completed  # the key is released for replays either way
    assert (await world.outbox.relay(1.0)).verifies == 0  # not due yet
    world.outbox.clock_offset_s = 2.5
    assert (await world.outbox.relay(1.0)).verifies == 1
    [message] = world.bus.sent
    assert message.message_id == f"verify-{order.order_id}"
    assert json.loads(message.body) == {"order_id": str(order.order_id), "attempt": 1}
    assert world.store.orders[order.order_id].verify_attempts == 1


async def test_settled_orders_verify_intent_is_skipped(world: World) -> None:
    result = await world.services.checkout(request(), None)
    assert result.order.status is OrderStatus.CONFIRMED
    world.outbox.clock_offset_s = 2.5
    report = await world.outbox.relay(1.0)
    assert (report.verifies, report.skipped, report.events) == (0, 1, 2) and world.bus.sent == []
    assert [json.loads(m.body)["type"] for m in world.events_bus.sent] == ["order.placed", "order.confirmed"]


async def test_bus_failure_does_not_touch_the_checkout(world: World) -> None:
    await world.services.products.list()
    world.inventory.down = True
    world.bus.broken = ConnectionError("bus down")
    result = await world.services.checkout(request(), None)
    assert result.order.status is OrderStatus.PENDING and world.bus.sent == []
    world.outbox.clock_offset_s = 2.5
    with pytest.raises(ConnectionError):
        await world.outbox.relay(1.0)
    assert result.order.order_id in world.store.verify_due  # still waiting: the next pass or the reconciler


async def test_the_inventory_gets_what_is_left_of_the_budget_minus_the_time_to_record() -> None:
    world = build_world(config(inventory_timeout_s=0.3))
    world.inventory.reserve_delay_s = 5.0  # far slower than any budget
    result = await world.services.checkout(request(), None)
    assert result.order.status is OrderStatus.PENDING
    [given] = world.inventory.reserve_timeouts
    assert given <= 0.3 - record_reserve_s(0.3)  # the answer leaves within the budget, not budget + call


async def test_an_order_write_that_cannot_finish_in_time_is_a_clear_503_cause() -> None:
    world = build_world(config(inventory_timeout_s=0.1))
    world.store.write_delay_s = 0.5
    with pytest.raises(CheckoutTimedOut):
        await world.services.checkout(request(), "k-slow-db")
    assert world.inventory.reserved == [] and world.bus.sent == []
    problem = problem_for(CheckoutTimedOut(0.1))
    assert problem is not None and problem.status == 503 and "Retry-After" in problem.headers


async def test_a_decision_that_cannot_be_recorded_in_time_answers_pending() -> None:
    world = build_world(config(inventory_timeout_s=0.5))
    await world.services.products.list()
    world.inventory.reserve_delay_s = 0.1  # answers in time ...
    world.store.write_delay_s = 0.0
    original = world.store.transition

    async def slow_transition(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(1.0)  # ... but the orders database is slow to record it
        return await original(*args, **kwargs)

    world.store.transition = slow_transition  # type: ignore[method-assign]
    result = await world.services.checkout(request(), None)
    assert result.order.status is OrderStatus.PENDING and world.inventory.reserved == [result.order.order_id]
    assert result.order.order_id in world.store.verify_due  # the verify hand-off records the decision later


async def test_same_key_and_body_replays_the_first_order(world: World) -> None:
    first = await world.services.checkout(request(), "k-1")
    again = await world.services.checkout(request(), "k-1")
    assert again.replayed and again.order.order_id == first.order.order_id
    assert again.order.status is OrderStatus.CONFIRMED and len(world.store.orders) == 1
    assert world.inventory.reserved == [first.order.order_id]


async def test_same_key_other_body_is_refused(world: World) -> None:
    first = await world.services.checkout(request("c-1", ("P-1", 1)), "k-1")
    with pytest.raises(IdempotencyKeyReused) as refused:
        await world.services.checkout(request("c-1", ("P-1", 2)), "k-1")
    assert refused.value.order_id == first.order.order_id and len(world.store.orders) == 1


async def test_same_key_while_the_first_is_in_flight_is_refused(world: World) -> None:
    first = uuid.uuid4()
    # claimed by a request still being processed
    await world.store.create(first, request(), "k-busy", event=new_event(OrderStatus.PENDING), verify_after_s=2)
    with pytest.raises(IdempotencyInFlight) as refused:
        await world.services.checkout(request(), "k-busy")
    assert refused.value.order_id == first and list(world.store.orders) == [first]


async def test_a_cold_catalogue_that_cannot_load_does_not_block_checkout(world: World) -> None:
    world.inventory.down = True
    result = await world.services.checkout(request("c-1", ("ANY", 1)), None)
    assert result.order.status is OrderStatus.PENDING and result.order.order_id in world.store.verify_due


async def test_a_failing_catalogue_refresh_is_not_retried_by_every_checkout(world: World) -> None:
    """While the inventory is slow, one checkout per refresh interval pays for the catalogue check, not all."""
    world.inventory.down = True
    for _ in range(5):
        assert (await world.services.checkout(request(), None)).order.is_pending
    assert world.inventory.list_attempts == 1  # the first tried (and failed); the others within 1 s did not
