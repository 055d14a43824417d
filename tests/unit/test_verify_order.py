"""VerifyOrder on fakes: settles pending orders, is a no-op for settled ones, raises while inventory is away."""

from __future__ import annotations

import uuid

import pytest

from order_functions.application.ports import InventoryUnavailable, ReservationOutcome, ReservationStatus
from order_functions.application.verify_queue import parse_verify_body, verify_message
from order_functions.domain.models import OrderStatus, SettledVia
from tests.unit.conftest import World
from tests.unit.fakes import request


async def test_pending_order_is_settled_via_verify_order(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request())
    settled = await world.services.verify_order(order.order_id, 1)
    assert settled is not None and settled.status is OrderStatus.CONFIRMED
    assert settled.settled_via is SettledVia.VERIFY_ORDER and world.metrics.redeliveries == []


async def test_rejection_is_recorded(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request())
    world.inventory.reserve_answer = ReservationOutcome(ReservationStatus.REJECTED, "")
    settled = await world.services.verify_order(order.order_id, 1)
    assert settled is not None and settled.status is OrderStatus.REJECTED and settled.reason == "insufficient stock"


async def test_released_answer_means_a_cancel_fenced_it(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request())
    world.inventory.reserve_answer = ReservationOutcome(ReservationStatus.RELEASED, "")
    settled = await world.services.verify_order(order.order_id, 1)
    assert settled is not None and settled.status is OrderStatus.CANCELLED
    assert settled.reason == "cancelled before stock was reserved"


async def test_already_settled_order_is_left_alone(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    again = await world.services.verify_order(order.order_id, 2)
    assert again == order and world.inventory.reserved == [] and world.store.events == []
    assert world.metrics.redeliveries == ["verify-order"]


async def test_unknown_order_is_dropped(world: World) -> None:
    assert await world.services.verify_order(uuid.uuid4(), 1) is None


async def test_inventory_still_away_raises_so_the_bus_redelivers(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request())
    world.inventory.down = True
    with pytest.raises(InventoryUnavailable):
        await world.services.verify_order(order.order_id, 1)
    assert world.store.orders[order.order_id].status is OrderStatus.PENDING


def test_message_ids_are_per_attempt_and_the_body_names_the_order() -> None:
    order_id = uuid.uuid4()
    first, retry = verify_message(order_id, 1), verify_message(order_id, 2)
    assert first.message_id == f"verify-{order_id}" and retry.message_id == f"verify-{order_id}-r2"
    assert parse_verify_body(retry.body) == order_id
