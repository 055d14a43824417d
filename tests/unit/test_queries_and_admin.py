"""The read side (orders, products, health) and the operations use cases on fakes."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from order_functions.application.errors import (
    AdminApiDisabled,
    ChaosAdminRefused,
    ChaosSettingsRefused,
    OrderNotFound,
)
from order_functions.application.ports import ChaosSwitches, InventoryRefused, ProductView
from order_functions.domain.models import OrderStatus
from order_functions.domain.reservation_events import parse_reservation_event
from tests.unit.conftest import World, build_world
from tests.unit.fakes import config, request


async def test_get_order_and_not_found(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request())
    assert await world.services.orders.get(order.order_id) == order
    with pytest.raises(OrderNotFound):
        await world.services.orders.get(uuid.uuid4())


async def test_recent_orders_filter_and_page(world: World) -> None:
    old = world.store.add(uuid.uuid4(), request("alice"), age_s=20)
    new = world.store.add(uuid.uuid4(), request("alice"), age_s=10)
    world.store.add(uuid.uuid4(), request("bob"), status=OrderStatus.CONFIRMED)
    page = await world.services.orders.recent(status=None, customer_id="alice", limit=1, before=None)
    assert page == [new]
    rest = await world.services.orders.recent(
        status=OrderStatus.PENDING, customer_id="alice", limit=5, before=(new.created_at, new.order_id)
    )
    assert rest == [old]


async def test_an_empty_catalogue_copy_is_filled_once_then_answers_without_the_inventory(world: World) -> None:
    first = await world.services.products.list()
    assert [p.product_id for p in first.products] == ["P-1", "P-2"] and first.source == "inventory"
    assert world.inventory.list_calls == 1
    world.inventory.down = True  # the Gremlin, or worse: the copy still answers
    again = await world.services.products.list()
    assert again.source == "copy" and [p.product_id for p in again.products] == ["P-1", "P-2"]
    assert again.as_of is not None
    world.inventory.down = False
    await world.services.checkout(request("c-1", ("P-2", 1)), None)
    assert world.inventory.list_calls == 1  # the checkout's catalogue check used the copy


async def test_a_copy_fed_only_by_stock_events_says_it_is_incomplete_until_a_full_listing(world: World) -> None:
    """A fresh database hears one restock before any full listing: the listing answers at once from the copy, says
    it is incomplete, and a full listing in the background completes it (the inventory may be slow: no waiting)."""
    event = json.dumps({"event_id": str(uuid.uuid4()), "type": "stock.changed", "cause": "restock", "products": [
        {"product_id": "P-2", "name": "p-2", "available": 4, "reserved": 0, "shipped": 0, "version": 9}]}).encode()
    await world.services.reservation_event(parse_reservation_event(event))
    world.inventory.down = True
    partial = await world.services.products.list()
    assert (partial.source, partial.complete) == ("copy", False)
    assert [p.product_id for p in partial.products] == ["P-2"]
    world.inventory.down = False
    listing = await world.services.products.list()
    for _ in range(100):  # bounded: the background listing lands
        if listing.complete:
            break
        await asyncio.sleep(0.01)
        listing = await world.services.products.list()
    assert listing.complete and listing.source == "copy"
    assert [p.product_id for p in listing.products] == ["P-1", "P-2"]
    assert [p.available for p in listing.products if p.product_id == "P-2"] == [4]  # the event's newer version kept
    calls = world.inventory.list_calls
    await world.services.products.list()
    assert world.inventory.list_calls == calls  # complete: no more asking


async def test_health_ok_and_naming_the_failed_dependency(world: World) -> None:
    healthy = await world.services.health()
    assert healthy["status"] == "ok" and set(healthy["checks"]) == {"orders_database", "inventory", "bus"}
    assert healthy["checks"]["bus"]["kind"] == "fake"
    world.inventory.down = True
    sick = await world.services.health()
    assert sick["status"] == "unavailable" and sick["checks"]["inventory"]["status"] == "failed"
    assert "InventoryUnavailable" in sick["checks"]["inventory"]["error"]
    assert sick["checks"]["orders_database"]["status"] == "ok"


async def test_chaos_switches_read_and_written(world: World) -> None:
    wanted = ChaosSwitches(True, 0.5, 1.0, "every:3", 0.1)
    assert (await world.services.chaos.apply(wanted)) == wanted
    assert (await world.services.chaos.current()) == wanted


async def test_chaos_admin_disabled() -> None:
    world = build_world(config(admin_api_enabled=False))
    with pytest.raises(AdminApiDisabled):
        await world.services.chaos.current()
    with pytest.raises(AdminApiDisabled):
        await world.services.chaos.apply(ChaosSwitches(False, 0, 0, "", 0))


async def test_chaos_refusals_name_their_cause(world: World) -> None:
    world.inventory.chaos_refusal = InventoryRefused("PERMISSION_DENIED", "admin token missing or wrong")
    with pytest.raises(ChaosAdminRefused):
        await world.services.chaos.current()
    world.inventory.chaos_refusal = InventoryRefused("INVALID_ARGUMENT", "min > max")
    with pytest.raises(ChaosSettingsRefused, match="min > max"):
        await world.services.chaos.apply(ChaosSwitches(True, 5, 1, "", 0))


async def test_bus_status(world: World) -> None:
    status = await world.services.bus_status()
    assert status == {"kind": "fake", "queue": "verify-order", "stats": {"active": 0, "dead_lettered": 0}}


async def test_a_full_listing_landing_during_a_read_never_labels_the_older_rows_complete(world: World) -> None:
    """The copy is read while the background listing lands: the answer holds the rows read before it, so it must
    say "incomplete" (it may lack products), not "complete"."""
    event = json.dumps({"event_id": str(uuid.uuid4()), "type": "stock.changed", "cause": "restock", "products": [
        {"product_id": "P-2", "name": "p-2", "available": 4, "reserved": 0, "shipped": 0, "version": 9}]}).encode()
    await world.services.reservation_event(parse_reservation_event(event))
    catalogue = world.services.catalogue
    read_rows = world.catalogue.snapshot

    async def snapshot_then_listing_lands() -> list[ProductView]:
        rows = await read_rows()
        await catalogue.refresh()  # the full listing commits right after these rows were read
        return rows

    world.catalogue.snapshot = snapshot_then_listing_lands  # type: ignore[method-assign]
    answer = await world.services.products.list()
    world.catalogue.snapshot = read_rows  # type: ignore[method-assign]
    assert [p.product_id for p in answer.products] == ["P-2"]
    assert answer.complete is False
    after = await world.services.products.list()
    assert after.complete and [p.product_id for p in after.products] == ["P-1", "P-2"]
