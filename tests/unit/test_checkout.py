"""Checkout on fakes: the fast path, the hand-over to verify-order, idempotency and refusals."""

from __future__ import annotations

import json
import uuid

import pytest

from order_functions.application.errors import IdempotencyInFlight, IdempotencyKeyReused, UnknownProduct
from order_functions.application.ports import InventoryRefused, ReservationOutcome, ReservationStatus
from order_functions.domain.models import OrderStatus, SettledVia
from tests.unit.conftest import World
from tests.unit.fakes import request


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


async def test_no_answer_in_time_leaves_it_pending_and_sends_verify_order(world: World) -> None:
    await world.services.products.list()  # warm catalogue: the inventory then goes quiet
    world.inventory.down = True
    result = await world.services.checkout(request(), "k-slow")
    order = result.order
    assert order.status is OrderStatus.PENDING
    [message] = world.bus.sent
    assert message.message_id == f"verify-{order.order_id}"
    assert json.loads(message.body) == {"order_id": str(order.order_id), "attempt": 1}
    assert world.store.orders[order.order_id].verify_attempts == 1
    assert world.store.keys[("c-1", "k-slow")].completed  # the key is released for replays either way


async def test_bus_failure_does_not_fail_the_checkout(world: World) -> None:
    await world.services.products.list()
    world.inventory.down = True
    world.bus.broken = ConnectionError("bus down")
    result = await world.services.checkout(request(), None)
    assert result.order.status is OrderStatus.PENDING and world.bus.sent == []
    assert world.store.orders[result.order.order_id].verify_attempts == 1  # the reconciler will re-send


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
    await world.store.create(first, request(), "k-busy")  # claimed by a request still being processed
    with pytest.raises(IdempotencyInFlight) as refused:
        await world.services.checkout(request(), "k-busy")
    assert refused.value.order_id == first and list(world.store.orders) == [first]


async def test_a_cold_catalogue_that_cannot_load_does_not_block_checkout(world: World) -> None:
    world.inventory.down = True
    result = await world.services.checkout(request("c-1", ("ANY", 1)), None)
    assert result.order.status is OrderStatus.PENDING and len(world.bus.sent) == 1
