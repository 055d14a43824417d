"""Settlement by events on fakes: each decision moves a pending order once, whoever else races; redeliveries do
nothing; stock events keep the highest version; unreadable events are poison."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from order_functions.application.ports import ProductView
from order_functions.domain.models import OrderStatus, SettledVia
from order_functions.domain.reservation_events import (
    OtherEvent,
    PoisonEvent,
    ReservationDecision,
    StockChanged,
    parse_reservation_event,
)
from tests.unit.conftest import World
from tests.unit.fakes import request


def body(event_type: str, order_id: uuid.UUID | None = None, **extra: Any) -> bytes:
    data: dict[str, Any] = {"event_id": str(uuid.uuid4()), "type": event_type,
                            "order_id": str(order_id) if order_id else None, **extra}
    if event_type.startswith("reservation."):
        data.setdefault("reservation", {"status": event_type.split(".")[1].upper(), "items": [],
                                        "short_product_id": "", "reason": "", "tombstone": False})
    return json.dumps(data).encode()


def level(product_id: str, available: int, version: int) -> dict[str, Any]:
    return {"product_id": product_id, "name": product_id.lower(), "available": available, "reserved": 0,
            "shipped": 0, "version": version}


async def test_a_reserved_event_confirms_the_pending_order_once(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request())
    event = parse_reservation_event(body("reservation.reserved", order.order_id))
    handled = await world.services.reservation_event(event)
    assert handled.effect == "applied" and handled.order is not None
    assert handled.order.status is OrderStatus.CONFIRMED
    assert handled.order.settled_via is SettledVia.RESERVATION_EVENT
    again = await world.services.reservation_event(event)  # redelivery
    assert again.effect == "duplicate"
    assert world.store.events == [(order.order_id, OrderStatus.CONFIRMED, SettledVia.RESERVATION_EVENT)]
    assert world.consumed.records[event.event_id] == ("reservation.reserved", order.order_id, "applied")


async def test_an_event_after_the_http_path_settled_changes_nothing(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    handled = await world.services.reservation_event(
        parse_reservation_event(body("reservation.reserved", order.order_id)))
    assert handled.effect == "no-op" and world.store.events == []


async def test_a_racing_writer_wins_and_the_event_reads_its_result(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request())
    world.store.cut_in[order.order_id] = OrderStatus.CONFIRMED  # VerifyOrder commits first
    handled = await world.services.reservation_event(
        parse_reservation_event(body("reservation.reserved", order.order_id)))
    assert handled.order is not None and handled.order.settled_via is SettledVia.VERIFY_ORDER
    assert [e[1] for e in world.store.events] == [OrderStatus.CONFIRMED]  # one transition in all


async def test_rejected_and_released_events(world: World) -> None:
    rejected = world.store.add(uuid.uuid4(), request())
    reason = "insufficient stock for P-1: 0 available"
    event = body("reservation.rejected", rejected.order_id,
                 reservation={"status": "REJECTED", "short_product_id": "P-1", "reason": reason})
    handled = await world.services.reservation_event(parse_reservation_event(event))
    assert handled.order is not None and handled.order.status is OrderStatus.REJECTED
    assert handled.order.reason == reason
    released = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    handled = await world.services.reservation_event(
        parse_reservation_event(body("reservation.released", released.order_id)))
    assert handled.order is not None and handled.order.status is OrderStatus.CANCELLED


async def test_a_shipped_event_records_a_ship_whose_reply_was_lost(world: World) -> None:
    order = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    handled = await world.services.reservation_event(
        parse_reservation_event(body("reservation.shipped", order.order_id)))
    assert handled.order is not None and handled.order.status is OrderStatus.SHIPPED


async def test_an_event_for_an_order_this_service_never_took_is_skipped(world: World) -> None:
    event = parse_reservation_event(body("reservation.reserved", uuid.uuid4()))
    assert (await world.services.reservation_event(event)).effect == "unknown-order"


async def test_stock_events_keep_the_highest_version(world: World) -> None:
    newer = body("stock.changed", products=[level("P-1", 7, 5)], cause="reserve")
    older = body("stock.changed", products=[level("P-1", 9, 4)], cause="reserve")
    assert (await world.services.reservation_event(parse_reservation_event(newer))).effect == "applied"
    assert (await world.services.reservation_event(parse_reservation_event(older))).effect == "no-op"
    assert [(p.available, p.version) for p in world.catalogue.rows.values()] == [(7, 5)]
    # a full refresh that is older than the copy keeps the copy's stock but takes the price
    await world.catalogue.apply_listing([ProductView("P-1", "p-1", 250, 9, 0, 0, 4)])
    assert [(p.available, p.price_cents) for p in world.catalogue.rows.values()] == [(7, 250)]


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"type": "reservation.reserved"}',
    b'{"event_id": "not-a-uuid", "type": "stock.changed", "products": []}',
    json.dumps({"event_id": str(uuid.uuid4()), "type": "reservation.reserved", "order_id": "x",
                "reservation": {}}).encode(),
    json.dumps({"event_id": str(uuid.uuid4()), "type": "stock.changed",
                "products": [{"product_id": "P", "available": -1, "reserved": 0, "shipped": 0, "version": 1}]}
               ).encode(),
])
def test_unreadable_events_are_poison(raw: bytes) -> None:
    with pytest.raises(PoisonEvent):
        parse_reservation_event(raw)


def test_event_kinds_are_told_apart() -> None:
    order_id = uuid.uuid4()
    assert isinstance(parse_reservation_event(body("reservation.reserved", order_id)), ReservationDecision)
    assert isinstance(parse_reservation_event(body("stock.changed", products=[])), StockChanged)
    assert isinstance(parse_reservation_event(body("inventory.audited")), OtherEvent)


async def test_a_batch_handles_each_event_as_one_by_one_would(world: World) -> None:
    """Stock changes and first decisions go in one step each; a second event of one order and a second copy of one
    event are handled after, in order, so they see what the first did."""
    pending = world.store.add(uuid.uuid4(), request())
    settled = world.store.add(uuid.uuid4(), request(), status=OrderStatus.CONFIRMED)
    reserved = parse_reservation_event(body("reservation.reserved", pending.order_id))
    released = parse_reservation_event(body("reservation.released", pending.order_id))
    late = parse_reservation_event(body("reservation.reserved", settled.order_id))
    stock = parse_reservation_event(body("stock.changed", products=[level("P-1", 4, 2)]))
    older = parse_reservation_event(body("stock.changed", products=[level("P-1", 9, 1)]))
    handled = await world.services.reservation_event.batch([reserved, stock, late, released, reserved, older])
    assert [h.effect for h in handled] == ["applied", "applied", "no-op", "applied", "duplicate", "no-op"]
    assert world.store.events == [
        (pending.order_id, OrderStatus.CONFIRMED, SettledVia.RESERVATION_EVENT),
        (pending.order_id, OrderStatus.CANCELLED, SettledVia.RESERVATION_EVENT),
    ]
    assert [(p.product_id, p.available, p.version) for p in await world.catalogue.snapshot()] == [("P-1", 4, 2)]
    assert await world.services.reservation_event.batch([]) == []
