"""The inventory's consistency checks hold after every kind of decision, and each one catches what it is for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from inventory_service.audit import audit
from inventory_service.domain.models import LineItem
from inventory_service.middleware.chaos import Chaos, ChaosSettings
from inventory_service.server import RunningInventory, start_inventory
from tests.support.inventory import inventory_config
from valerix_common.embedded_pg import EmbeddedPostgres


@pytest.fixture
async def scenario(pg_server: EmbeddedPostgres | None) -> AsyncIterator[tuple[RunningInventory, dict[str, uuid.UUID]]]:
    """A fresh database with one order of every fate, its events marked sent as a relay would."""
    if pg_server is None:
        pytest.skip("needs the embedded PostgreSQL server")
    url = pg_server.create_database(f"inventory_audit_{uuid.uuid4().hex[:8]}", "inventory_svc")
    running = await start_inventory(inventory_config(url), Chaos(ChaosSettings()))
    repo = running.repository
    orders = {name: uuid.uuid4() for name in ("reserved", "rejected", "released", "tombstone", "shipped")}
    try:
        await repo.restock("AUD-1", 5, "audit one", 100)
        await repo.restock("AUD-2", 2, "audit two", 100)
        await repo.reserve(orders["reserved"], (LineItem("AUD-1", 1), LineItem("AUD-2", 1)))
        await repo.reserve(orders["rejected"], (LineItem("AUD-2", 9),))
        await repo.reserve(orders["released"], (LineItem("AUD-1", 2),))
        await repo.release(orders["released"], "cancelled")
        await repo.release(orders["tombstone"], "gave up")
        await repo.reserve(orders["shipped"], (LineItem("AUD-1", 1),))
        await repo.ship(orders["shipped"])
        await repo.ship(orders["shipped"])  # a replay adds nothing
        async with repo.pool.connection() as conn:
            await conn.execute("UPDATE outbox SET sent_at = now()")
        yield running, orders
    finally:
        await running.stop(1)


async def test_every_check_holds_after_every_kind_of_decision(
    scenario: tuple[RunningInventory, dict[str, uuid.UUID]],
) -> None:
    running, _ = scenario
    async with running.repository.pool.connection() as conn:
        found = await audit(conn)
    assert found == {name: [] for name in found}
    assert set(found) == {"conservation", "decision_events", "orphan_events", "stock_events", "unsent_events"}


async def test_each_check_catches_its_violation(scenario: tuple[RunningInventory, dict[str, uuid.UUID]]) -> None:
    running, orders = scenario
    async with running.repository.pool.connection() as conn:
        await conn.execute("UPDATE products SET available = available - 1 WHERE product_id = 'AUD-2'")
        await conn.execute(
            "DELETE FROM outbox WHERE order_id = %s AND type = 'reservation.shipped'", (orders["shipped"],)
        )
        await conn.execute(
            "INSERT INTO outbox (event_id, type, order_id, payload) VALUES (%s, 'reservation.rejected', %s, '{}')",
            (uuid.uuid4(), uuid.uuid4()),
        )
        await conn.execute(
            "INSERT INTO outbox (event_id, type, payload) VALUES (%s, 'reservation.reserved', '{}')", (uuid.uuid4(),)
        )
        found = await audit(conn)
    assert [row["product_id"] for row in found["conservation"]] == ["AUD-2"]
    assert [row["order_id"] for row in found["decision_events"]] == [orders["shipped"]]
    assert len(found["orphan_events"]) == 1
    # AUD-2's latest snapshot now disagrees with its row; AUD-1 is untouched
    assert [row["product_id"] for row in found["stock_events"]] == ["AUD-2"]
    assert len(found["unsent_events"]) == 2
