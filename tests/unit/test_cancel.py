"""Cancellation on fakes: release then move; rejected orders refuse; an unanswered release is finished later."""

from __future__ import annotations

import uuid

import pytest

from order_functions.application.errors import OrderNotFound, OrderRejected
from order_functions.application.ports import InventoryUnavailable, ReleaseOutcome, ReservationStatus
from order_functions.domain.models import OrderStatus, SettledVia
from tests.unit.conftest import World
from tests.unit.fakes import request


async def test_confirmed_order_is_released_and_cancelled(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    result = await world.services.cancel_order(order.order_id)
    assert result.complete and result.order.status is OrderStatus.CANCELLED
    assert result.order.reason == "cancelled by customer" and world.inventory.released == [order.order_id]
    assert world.metrics.calls == ["ReleaseReservation"] and world.metrics.outcomes == [("cancelled", "cancel")]


async def test_cancelling_twice_is_idempotent(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    await world.services.cancel_order(order.order_id)
    again = await world.services.cancel_order(order.order_id)
    assert again.complete and again.order.status is OrderStatus.CANCELLED
    assert world.inventory.released == [order.order_id]  # no second release


async def test_unknown_order(world: World) -> None:
    with pytest.raises(OrderNotFound):
        await world.services.cancel_order(uuid.uuid4())


async def test_rejected_order_holds_nothing_to_cancel(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.REJECTED)
    with pytest.raises(OrderRejected) as refused:
        await world.services.cancel_order(order.order_id)
    assert refused.value.order == order and world.inventory.released == []


async def test_inventory_had_rejected_it_records_rejected(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request())
    world.inventory.release_answer = ReleaseOutcome(ReservationStatus.REJECTED, False, False)
    with pytest.raises(OrderRejected) as refused:
        await world.services.cancel_order(order.order_id)
    assert refused.value.order.status is OrderStatus.REJECTED
    assert "insufficient stock" in world.store.orders[order.order_id].reason


async def test_release_without_an_answer_is_accepted_and_left_to_the_reconciler(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    world.inventory.release_answer = InventoryUnavailable("DEADLINE_EXCEEDED")
    result = await world.services.cancel_order(order.order_id)
    assert not result.complete and result.order.status is OrderStatus.CONFIRMED and result.order.cancel_requested
    world.inventory.release_answer = ReleaseOutcome(ReservationStatus.RELEASED, True, False)
    report = await world.services.reconcile()
    assert report.cancelled == 1
    finished = world.store.orders[order.order_id]
    assert finished.status is OrderStatus.CANCELLED and finished.settled_via is SettledVia.RECONCILER
