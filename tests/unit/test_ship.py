"""Shipping on fakes: confirmed ships once (a repeat replays), nothing else ships, a shipped order cannot be
cancelled, and an unanswered ship changes nothing on the order side."""

from __future__ import annotations

import uuid

import pytest

from order_functions.application.errors import InvalidTransition, OrderNotFound
from order_functions.application.ports import InventoryRefused, InventoryUnavailable
from order_functions.domain.models import OrderStatus, SettledVia
from tests.unit.conftest import World
from tests.unit.fakes import config, request


async def test_a_confirmed_order_ships_and_a_repeat_replays(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    first = await world.services.ship_order(order.order_id)
    assert first.order.status is OrderStatus.SHIPPED and not first.replayed
    assert world.inventory.shipped == [order.order_id] and world.metrics.calls == ["ShipReservation"]
    again = await world.services.ship_order(order.order_id)
    assert again.replayed and again.order.status is OrderStatus.SHIPPED
    assert world.store.events == [(order.order_id, OrderStatus.SHIPPED, SettledVia.SHIP)]


@pytest.mark.parametrize("status", [OrderStatus.PENDING, OrderStatus.REJECTED, OrderStatus.CANCELLED])
async def test_only_a_confirmed_order_ships(world: World, status: OrderStatus) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=status)
    with pytest.raises(InvalidTransition) as refused:
        await world.services.ship_order(order.order_id)
    assert refused.value.order.status is status and world.inventory.shipped == []


async def test_an_order_being_cancelled_does_not_ship(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    await world.store.request_cancel(order.order_id)
    with pytest.raises(InvalidTransition):
        await world.services.ship_order(order.order_id)
    assert world.inventory.shipped == []


async def test_unknown_order_and_inventory_refusal_and_silence(world: World) -> None:
    with pytest.raises(OrderNotFound):
        await world.services.ship_order(uuid.uuid4())
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    world.inventory.ship_answer = InventoryRefused("NOT_FOUND", "no reservation")
    with pytest.raises(InvalidTransition):
        await world.services.ship_order(order.order_id)
    world.inventory.ship_answer = None
    world.inventory.down = True
    with pytest.raises(InventoryUnavailable):
        await world.services.ship_order(order.order_id)
    assert world.store.orders[order.order_id].status is OrderStatus.CONFIRMED  # nothing recorded: retry is safe


async def test_a_shipped_order_cannot_be_cancelled(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.SHIPPED)
    with pytest.raises(InvalidTransition) as refused:
        await world.services.cancel_order(order.order_id)
    assert "shipped" in str(refused.value) and world.inventory.released == []


async def test_the_operator_waits_longer_for_the_warehouse_than_a_shopper_for_checkout(world: World) -> None:
    """A 2-5 s inventory (the Gremlin) must not fail every ship: the ship call has its own, longer timeout."""
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    await world.services.ship_order(order.order_id)
    cfg = config()
    assert world.inventory.ship_timeouts == [cfg.ship_timeout_s] and cfg.ship_timeout_s > 5.0
