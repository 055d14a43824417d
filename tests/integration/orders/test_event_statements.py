"""The reservation-event consumer's single statements against PostgreSQL: a decision's first look (seen, the order,
its record when the event cannot move the order) and a stock event applied with its record, once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from order_functions.application.ports import DecisionLook
from order_functions.domain.models import OrderStatus, sources_for
from order_functions.domain.reservation_events import StockChanged, StockLevel
from order_functions.infrastructure.catalogue_repository import CatalogueRepository, ConsumedEventsRepository
from order_functions.infrastructure.orders_repository import MIGRATIONS
from valerix_common.db import Pool, make_pool
from valerix_common.embedded_pg import EmbeddedPostgres
from valerix_common.migrations import apply_migrations

CONFIRMED_FROM = sources_for(OrderStatus.CONFIRMED)


@pytest.fixture
async def pool(pg_server: EmbeddedPostgres | None) -> AsyncIterator[Pool]:
    if pg_server is None:
        pytest.skip("needs the embedded PostgreSQL server")
    url = pg_server.create_database(f"orders_sql_{uuid.uuid4().hex[:8]}", "orders_svc")
    pool = make_pool(url, name="event-statements", min_size=1, max_size=4, mode="password")
    await pool.open()
    try:
        async with pool.connection() as conn:
            await apply_migrations(conn, MIGRATIONS)
        yield pool
    finally:
        await pool.close()


async def add_order(pool: Pool, status: str) -> uuid.UUID:
    order_id = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO orders (order_id, customer_id, status, items) VALUES (%s, 'alice', %s, '[[\"P-1\", 1]]')",
            (order_id, status),
        )
    return order_id


async def consumed(pool: Pool, event_id: uuid.UUID) -> dict[str, Any] | None:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT event_type, order_id, effect FROM consumed_events WHERE event_id = %s",
                                 (event_id,))
        return await cur.fetchone()


async def test_a_decision_for_a_settled_order_is_recorded_in_its_first_look(pool: Pool) -> None:
    repo = ConsumedEventsRepository(pool)
    order_id = await add_order(pool, "confirmed")
    event_id = uuid.uuid4()
    look = await repo.first_look(event_id, "reservation.reserved", order_id, CONFIRMED_FROM)
    assert not look.seen and look.recorded
    assert look.order is not None and look.order.order_id == order_id and look.order.status is OrderStatus.CONFIRMED
    assert await consumed(pool, event_id) == {"event_type": "reservation.reserved", "order_id": order_id,
                                              "effect": "no-op"}
    again = await repo.first_look(event_id, "reservation.reserved", order_id, CONFIRMED_FROM)
    assert again.seen and not again.recorded


async def test_a_decision_for_a_pending_order_records_nothing_yet(pool: Pool) -> None:
    repo = ConsumedEventsRepository(pool)
    order_id = await add_order(pool, "pending")
    event_id = uuid.uuid4()
    look = await repo.first_look(event_id, "reservation.reserved", order_id, CONFIRMED_FROM)
    assert not look.seen and not look.recorded
    assert look.order is not None and look.order.status is OrderStatus.PENDING
    assert await consumed(pool, event_id) is None  # recorded after its transition, by the use case


async def test_a_decision_for_an_unknown_order_is_recorded_as_such(pool: Pool) -> None:
    repo = ConsumedEventsRepository(pool)
    event_id, order_id = uuid.uuid4(), uuid.uuid4()
    look = await repo.first_look(event_id, "reservation.rejected", order_id, sources_for(OrderStatus.REJECTED))
    assert not look.seen and look.recorded and look.order is None
    assert (await consumed(pool, event_id) or {})["effect"] == "unknown-order"


def level(product_id: str, available: int, version: int) -> StockLevel:
    return StockLevel(product_id, product_id.lower(), available, 0, 0, version)


async def catalogue(pool: Pool) -> dict[str, tuple[int, int]]:
    return {p.product_id: (p.available, p.version) for p in await CatalogueRepository(pool).snapshot()}


async def test_a_stock_event_moves_newer_levels_once_and_records_its_effect(pool: Pool) -> None:
    repo = CatalogueRepository(pool)
    first, older, repeat = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await repo.apply_levels(first, "stock.changed", (level("P-2", 7, 3), level("P-1", 5, 2))) == 2
    assert await catalogue(pool) == {"P-1": (5, 2), "P-2": (7, 3)}
    assert (await consumed(pool, first) or {})["effect"] == "applied"
    assert await repo.apply_levels(first, "stock.changed", (level("P-1", 0, 9),)) is None  # a redelivery
    assert await catalogue(pool) == {"P-1": (5, 2), "P-2": (7, 3)}
    assert await repo.apply_levels(older, "stock.changed", (level("P-1", 1, 1),)) == 0  # older: nothing moves
    assert (await consumed(pool, older) or {})["effect"] == "no-op"
    # the same product twice in one event: its newest figures win
    assert await repo.apply_levels(repeat, "stock.changed", (level("P-1", 4, 5), level("P-1", 3, 4))) == 1
    assert await catalogue(pool) == {"P-1": (4, 5), "P-2": (7, 3)}


async def test_a_batch_of_stock_events_is_one_statement_with_the_same_outcome_as_one_by_one(pool: Pool) -> None:
    repo = CatalogueRepository(pool)
    seen_before, newer, older, renamed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert await repo.apply_levels(seen_before, "stock.changed", (level("P-1", 5, 2),)) == 1
    named = StockLevel("P-3", "Lamp", 9, 0, 0, 1)
    unnamed = StockLevel("P-3", "", 8, 1, 0, 2)
    effects = await repo.apply_levels_many([
        StockChanged(seen_before, "stock.changed", (level("P-1", 0, 9),)),  # a redelivery: ignored
        StockChanged(newer, "stock.changed", (level("P-1", 4, 6), level("P-2", 7, 1))),
        StockChanged(older, "stock.changed", (level("P-1", 3, 3),)),  # older than the copy: moves nothing
        StockChanged(renamed, "stock.reserved", (named,)),
        StockChanged(uuid.uuid4(), "stock.reserved", (unnamed,)),  # newest figures, the name of the earlier one
    ])
    assert effects == [None, True, False, True, True]
    assert await catalogue(pool) == {"P-1": (4, 6), "P-2": (7, 1), "P-3": (8, 2)}
    assert {p.product_id: p.name for p in await repo.snapshot()}["P-3"] == "Lamp"
    assert (await consumed(pool, older) or {})["effect"] == "no-op"
    assert (await consumed(pool, newer) or {})["effect"] == "applied"
    with pytest.raises(ValueError):
        await repo.apply_levels_many([StockChanged(newer, "stock.changed", ()), StockChanged(newer, "x", ())])


async def test_first_looks_of_a_batch_give_each_decision_what_its_own_look_would(pool: Pool) -> None:
    repo = ConsumedEventsRepository(pool)
    settled, pending, handled_before = [await add_order(pool, s) for s in ("confirmed", "pending", "confirmed")]
    old_event = uuid.uuid4()
    assert (await repo.first_look(old_event, "reservation.reserved", handled_before, CONFIRMED_FROM)).recorded
    events = [uuid.uuid4() for _ in range(3)]
    unknown = uuid.uuid4()
    looks = await repo.first_looks([
        DecisionLook(events[0], "reservation.reserved", settled, CONFIRMED_FROM),
        DecisionLook(events[1], "reservation.reserved", pending, CONFIRMED_FROM),
        DecisionLook(old_event, "reservation.reserved", handled_before, CONFIRMED_FROM),
        DecisionLook(events[2], "reservation.reserved", unknown, CONFIRMED_FROM),
    ])
    assert [(x.seen, x.recorded) for x in looks] == [(False, True), (False, False), (True, False), (False, True)]
    assert [x.order.status.value if x.order else None for x in looks] == ["confirmed", "pending", "confirmed", None]
    assert [(await consumed(pool, e) or {}).get("effect") for e in events] == ["no-op", None, "unknown-order"]
    with pytest.raises(ValueError):  # one order twice: the second must see what the first did
        await repo.first_looks([DecisionLook(uuid.uuid4(), "reservation.reserved", pending, CONFIRMED_FROM),
                                DecisionLook(uuid.uuid4(), "reservation.released", pending, CONFIRMED_FROM)])
