"""Events written with their decisions, and ShipReservation, against the real gRPC server and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider

from inventory_service.domain.models import LineItem
from protos import inventory_pb2 as pb
from tests.support.inventory import InventoryHarness, item, reserve_request


def events(inventory: InventoryHarness, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = inventory.sql("SELECT type, payload FROM outbox WHERE order_id = %s ORDER BY sequence", order_id)
    return [(kind, payload) for kind, payload in rows]


def stock_events(inventory: InventoryHarness, product_id: str) -> list[dict[str, Any]]:
    """The stock.changed snapshots of one product, oldest first."""
    rows = inventory.sql(
        "SELECT p FROM outbox, jsonb_array_elements(payload->'products') p"
        " WHERE type = 'stock.changed' AND p->>'product_id' = %s ORDER BY sequence",
        product_id,
    )
    return [row[0] for row in rows]


def conserved(inventory: InventoryHarness, product_id: str) -> tuple[int, int, int, int]:
    """(received, available, Σ RESERVED, Σ SHIPPED) from the reservation rows, not from the counters."""
    ((received, available, reserved, shipped, shipped_counter),) = inventory.sql(
        "SELECT p.received, p.available,"
        " COALESCE(SUM(ri.quantity) FILTER (WHERE r.status = 'RESERVED'), 0),"
        " COALESCE(SUM(ri.quantity) FILTER (WHERE r.status = 'SHIPPED'), 0), p.shipped"
        " FROM products p LEFT JOIN reservation_items ri ON ri.product_id = p.product_id"
        " LEFT JOIN reservations r ON r.order_id = ri.order_id WHERE p.product_id = %s"
        " GROUP BY p.received, p.available, p.shipped",
        product_id,
    )
    assert shipped_counter == shipped
    return int(received), int(available), int(reserved), int(shipped)


async def test_reserve_writes_its_decision_and_stock_change_in_one_transaction(inventory: InventoryHarness) -> None:
    a, b = await inventory.new_product(5), await inventory.new_product(3)
    order_id = str(uuid.uuid4())
    reply = await inventory.stub.ReserveStock(reserve_request([item(b, 1), item(a, 2)], order_id))
    assert reply.status == pb.RESERVATION_STATUS_RESERVED
    ((decided, decision), (changed, stock)) = events(inventory, order_id)
    assert decided == "reservation.reserved" and changed == "stock.changed"
    assert decision["reservation"]["status"] == "RESERVED"
    assert decision["reservation"]["items"] == sorted(
        [{"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 1}], key=lambda i: str(i["product_id"])
    )
    assert stock["cause"] == "reserve"
    by_id = {p["product_id"]: p for p in stock["products"]}
    assert (by_id[a]["available"], by_id[a]["reserved"], by_id[a]["shipped"]) == (3, 2, 0)
    assert by_id[b]["available"] == 2 and by_id[b]["name"] == f"test {b}"
    # the version grows with every change: restock made 1, this reservation 2
    assert [p["version"] for p in stock_events(inventory, a)] == [1, 2]
    ((event_id, occurred_at, sent_at),) = inventory.sql(
        "SELECT event_id, occurred_at, sent_at FROM outbox WHERE order_id = %s AND type = 'stock.changed'", order_id
    )
    assert isinstance(event_id, uuid.UUID) and occurred_at is not None and sent_at is None  # no bus here


async def test_a_replay_writes_no_second_event(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(5)
    order_id = str(uuid.uuid4())
    replies = await asyncio.gather(
        *(inventory.stub.ReserveStock(reserve_request([item(product, 1)], order_id)) for _ in range(8))
    )
    assert sum(not r.replayed for r in replies) == 1
    assert [kind for kind, _ in events(inventory, order_id)] == ["reservation.reserved", "stock.changed"]


async def test_rejection_writes_one_event_and_no_stock_change(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(1)
    order_id = str(uuid.uuid4())
    reply = await inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id))
    assert reply.status == pb.RESERVATION_STATUS_REJECTED
    ((kind, payload),) = events(inventory, order_id)
    assert kind == "reservation.rejected"
    assert payload["reservation"]["short_product_id"] == product
    assert "insufficient stock" in payload["reservation"]["reason"]
    assert len(stock_events(inventory, product)) == 1  # only the restock


async def test_a_refused_call_rolls_back_and_writes_no_event(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(4)
    order_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.stub.ReserveStock(reserve_request([item(product, 1), item("NO-SUCH-PRODUCT", 1)], order_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert events(inventory, order_id) == []
    await inventory.stub.ReserveStock(reserve_request([item(product, 1)], order_id))
    with pytest.raises(grpc.aio.AioRpcError) as err:  # same order id, other items
        await inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(events(inventory, order_id)) == 2
    assert inventory.available(product) == 3


async def test_a_failed_transaction_leaves_no_event_behind(inventory: InventoryHarness) -> None:
    """A decision whose transaction aborts after the events were written: neither the decision nor its events stay."""
    product = await inventory.new_product(2)
    order_id = uuid.uuid4()
    with failing_commits(inventory):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await inventory.stub.ReserveStock(reserve_request([item(product, 1)], str(order_id)))
        assert err.value.code() == grpc.StatusCode.INTERNAL
    assert events(inventory, str(order_id)) == []
    assert inventory.sql("SELECT count(*) FROM reservations WHERE order_id = %s", order_id) == [(0,)]
    assert inventory.available(product) == 2


@contextmanager
def failing_commits(inventory: InventoryHarness) -> Iterator[None]:
    """For the duration, any commit that wrote an outbox row fails: a deferred constraint trigger fires at commit,
    after every statement of the decision (and its events) succeeded."""
    with psycopg.connect(inventory.db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'injected commit failure'; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER fail_outbox AFTER INSERT ON outbox DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION fail_outbox()"
        )
        try:
            yield
        finally:
            conn.execute("DROP TRIGGER fail_outbox ON outbox")
            conn.execute("DROP FUNCTION fail_outbox()")


async def test_release_and_tombstone_events(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(3)
    order_id = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id))
    for _ in range(2):  # the second release changes nothing and writes nothing
        await inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id, reason="cancelled"))
    kinds = [kind for kind, _ in events(inventory, order_id)]
    assert kinds == ["reservation.reserved", "stock.changed", "reservation.released", "stock.changed"]
    _, released = events(inventory, order_id)[2]
    assert released["reservation"]["reason"] == "cancelled" and released["reservation"]["tombstone"] is False
    restore = stock_events(inventory, product)[-1]
    assert (restore["available"], restore["reserved"], restore["version"]) == (3, 0, 3)

    tomb_id = str(uuid.uuid4())
    reply = await inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=tomb_id))
    assert reply.tombstone
    ((kind, payload),) = events(inventory, tomb_id)
    assert kind == "reservation.released" and payload["reservation"]["tombstone"] is True
    late = await inventory.stub.ReserveStock(reserve_request([item(product, 1)], tomb_id))
    assert late.replayed and len(events(inventory, tomb_id)) == 1  # the fenced late request adds nothing


async def test_restock_reports_the_new_stock(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(2)
    await inventory.stub.Restock(
        pb.RestockRequest(product_id=product, quantity=5),
        metadata=(("x-valerix-admin-token", "test-admin-token"),),
    )
    first, second = stock_events(inventory, product)
    assert (first["available"], first["version"]) == (2, 1)
    assert (second["available"], second["version"]) == (7, 2)
    ((cause,),) = inventory.sql(
        "SELECT payload->>'cause' FROM outbox WHERE type = 'stock.changed' AND order_id IS NULL"
        " AND payload->'products'->0->>'product_id' = %s ORDER BY sequence DESC LIMIT 1",
        product,
    )
    assert cause == "restock"


async def test_the_callers_trace_context_is_captured_with_the_event(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(2)
    order_id = uuid.uuid4()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("checkout") as span:
        await inventory.running.repository.reserve(order_id, (LineItem(product, 1),))
        trace_id = format(span.get_span_context().trace_id, "032x")
    rows = inventory.sql("SELECT traceparent FROM outbox WHERE order_id = %s", order_id)
    assert len(rows) == 2 and all(tp.startswith(f"00-{trace_id}-") for (tp,) in rows)


async def test_ship_moves_reserved_units_out_once(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(5)
    order_id = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id))
    assert conserved(inventory, product) == (5, 3, 2, 0)
    first = await inventory.stub.ShipReservation(pb.ShipReservationRequest(order_id=order_id))
    assert first.status == pb.RESERVATION_STATUS_SHIPPED and not first.replayed
    assert [(i.product_id, i.quantity) for i in first.items] == [(product, 2)]
    assert conserved(inventory, product) == (5, 3, 0, 2)  # available unchanged, the units are no longer reserved
    again = await inventory.stub.ShipReservation(pb.ShipReservationRequest(order_id=order_id))
    assert again.status == pb.RESERVATION_STATUS_SHIPPED and again.replayed
    assert conserved(inventory, product) == (5, 3, 0, 2)
    kinds = [kind for kind, _ in events(inventory, order_id)]
    assert kinds == ["reservation.reserved", "stock.changed", "reservation.shipped", "stock.changed"]
    shipped = stock_events(inventory, product)[-1]
    assert (shipped["available"], shipped["reserved"], shipped["shipped"]) == (3, 0, 2)
    (listed,) = (await inventory.stub.ListProducts(pb.ListProductsRequest(product_ids=[product]))).products
    assert (listed.available, listed.reserved, listed.shipped, listed.version) == (3, 0, 2, 3)
    got = await inventory.stub.GetReservation(pb.GetReservationRequest(order_id=order_id))
    assert got.status == pb.RESERVATION_STATUS_SHIPPED
    replay = await inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id))
    assert replay.replayed and replay.status == pb.RESERVATION_STATUS_SHIPPED


async def test_concurrent_ships_of_one_order_ship_it_once(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(4)
    order_id = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 3)], order_id))
    replies = await asyncio.gather(
        *(inventory.stub.ShipReservation(pb.ShipReservationRequest(order_id=order_id)) for _ in range(10))
    )
    assert sum(not r.replayed for r in replies) == 1
    assert conserved(inventory, product) == (4, 1, 0, 3)
    assert [kind for kind, _ in events(inventory, order_id)].count("reservation.shipped") == 1


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def test_ship_refusals_change_nothing(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(1)
    unknown = str(uuid.uuid4())
    assert await _code(inventory.stub.ShipReservation(pb.ShipReservationRequest(order_id=unknown))) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert inventory.sql("SELECT count(*) FROM reservations WHERE order_id = %s", unknown) == [(0,)]
    assert await _code(inventory.stub.ShipReservation(pb.ShipReservationRequest(order_id="nope"))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    rejected = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 5)], rejected))
    released = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 1)], released))
    await inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=released))
    tombstone = str(uuid.uuid4())
    await inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=tombstone))
    before = inventory.sql("SELECT count(*) FROM outbox")
    for order_id in (rejected, released, tombstone):
        code = await _code(inventory.stub.ShipReservation(pb.ShipReservationRequest(order_id=order_id)))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert inventory.sql("SELECT count(*) FROM outbox") == before
    assert conserved(inventory, product) == (1, 1, 0, 0)


async def test_shipped_stock_cannot_be_released(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(2)
    order_id = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id))
    await inventory.stub.ShipReservation(pb.ShipReservationRequest(order_id=order_id))
    code = await _code(inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert conserved(inventory, product) == (2, 0, 0, 2)
    assert [kind for kind, _ in events(inventory, order_id)][-1] == "stock.changed"  # nothing after the ship


async def test_the_order_sides_client_ships_idempotently(inventory: InventoryHarness) -> None:
    from order_functions.application.ports import InventoryRefused
    from order_functions.infrastructure.inventory_client import GrpcInventory
    from tests.support.inventory import order_service_interceptor

    product = await inventory.new_product(2)
    order_id = uuid.uuid4()
    await inventory.stub.ReserveStock(reserve_request([item(product, 1)], str(order_id)))
    client = GrpcInventory(inventory.target, interceptors=[order_service_interceptor()])  # as the Order Service
    try:
        assert await client.ship(order_id, timeout_s=5) is False  # shipped by this call
        assert await client.ship(order_id, timeout_s=5) is True  # a replay
        with pytest.raises(InventoryRefused) as refused:
            await client.ship(uuid.uuid4(), timeout_s=5)
        assert refused.value.code == "NOT_FOUND"
    finally:
        await client.close()
    assert conserved(inventory, product) == (2, 1, 0, 1)
