"""The reservation rules of docs/architecture.md against a real gRPC server and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from protos import inventory_pb2 as pb
from tests.support.inventory import InventoryHarness, item, reserve_request

RESERVED = pb.RESERVATION_STATUS_RESERVED
REJECTED = pb.RESERVATION_STATUS_REJECTED
RELEASED = pb.RESERVATION_STATUS_RELEASED


async def test_64_racers_for_10_units_reserve_exactly_10(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(10)
    replies = await asyncio.gather(
        *(inventory.stub.ReserveStock(reserve_request([item(product, 1)])) for _ in range(64))
    )
    statuses = [r.status for r in replies]
    assert statuses.count(RESERVED) == 10
    assert statuses.count(REJECTED) == 54
    assert all(r.short_product_id == product for r in replies if r.status == REJECTED)
    assert inventory.available(product) == 0
    assert inventory.conservation_holds(product)


async def test_multi_item_orders_in_opposite_orders_neither_deadlock_nor_split(inventory: InventoryHarness) -> None:
    a = await inventory.new_product(30, "A")
    b = await inventory.new_product(30, "B")
    requests = []
    for n in range(40):
        items = [item(a, 1), item(b, 1)] if n % 2 else [item(b, 1), item(a, 1)]
        requests.append(inventory.stub.ReserveStock(reserve_request(items)))
    replies = await asyncio.gather(*requests)  # a deadlock would surface here as an error status
    reserved = [r for r in replies if r.status == RESERVED]
    assert len(reserved) == 30
    assert inventory.available(a) == 0 and inventory.available(b) == 0
    assert inventory.conservation_holds(a) and inventory.conservation_holds(b)
    for reply in replies:
        rows = inventory.sql(
            "SELECT count(*) FROM reservation_items WHERE order_id = %s", uuid.UUID(reply.order_id)
        )
        assert rows[0][0] == 2  # both items recorded: all or nothing, never one of them


async def test_rejection_is_all_or_nothing(inventory: InventoryHarness) -> None:
    plenty = await inventory.new_product(50)
    scarce = await inventory.new_product(1)
    reply = await inventory.stub.ReserveStock(reserve_request([item(plenty, 5), item(scarce, 2)]))
    assert reply.status == REJECTED
    assert reply.short_product_id == scarce
    assert "insufficient stock" in reply.reason
    assert inventory.available(plenty) == 50
    assert inventory.available(scarce) == 1


async def test_same_order_id_twenty_times_concurrently_decrements_once(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(100)
    request = reserve_request([item(product, 3)])
    replies = await asyncio.gather(*(inventory.stub.ReserveStock(request) for _ in range(20)))
    assert inventory.available(product) == 97
    assert sum(not r.replayed for r in replies) == 1
    decided = {(r.order_id, r.status, tuple((i.product_id, i.quantity) for i in r.items),
                r.decided_at.ToNanoseconds()) for r in replies}
    assert len(decided) == 1
    assert inventory.conservation_holds(product)


async def test_replay_with_different_items_is_failed_precondition(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(10)
    order_id = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 1)], order_id))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert inventory.available(product) == 9


async def test_release_restores_once_and_tombstone_fences_late_reserve(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(10)
    order_id = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 4)], order_id))
    assert inventory.available(product) == 6

    first = await inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id))
    assert (first.status, first.restored, first.tombstone) == (RELEASED, True, False)
    second = await inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id))
    assert (second.status, second.restored, second.tombstone) == (RELEASED, False, False)
    assert inventory.available(product) == 10

    late_order = str(uuid.uuid4())
    tomb = await inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=late_order))
    assert (tomb.status, tomb.restored, tomb.tombstone) == (RELEASED, False, True)
    late = await inventory.stub.ReserveStock(reserve_request([item(product, 2)], late_order))
    assert late.status == RELEASED and late.replayed
    assert inventory.available(product) == 10
    assert inventory.conservation_holds(product)

    replay_released = await inventory.stub.ReserveStock(reserve_request([item(product, 4)], order_id))
    assert replay_released.status == RELEASED and replay_released.replayed
    assert inventory.available(product) == 10


async def test_release_racing_reserve_leaves_consistent_stock(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(200)
    order_ids = [str(uuid.uuid4()) for _ in range(40)]
    calls: list[Any] = []
    for order_id in order_ids:
        calls.append(inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id)))
        calls.append(inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id)))
    await asyncio.gather(*calls)
    # whichever came first, every order ends RELEASED and all stock is back
    assert inventory.available(product) == 200
    statuses = inventory.sql(
        "SELECT DISTINCT status FROM reservations WHERE order_id = ANY(%s)", [uuid.UUID(o) for o in order_ids]
    )
    assert statuses == [("RELEASED",)]
    assert inventory.conservation_holds(product)


async def test_release_of_rejected_order_changes_nothing(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(1)
    order_id = str(uuid.uuid4())
    reply = await inventory.stub.ReserveStock(reserve_request([item(product, 5)], order_id))
    assert reply.status == REJECTED
    release = await inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id))
    assert (release.status, release.restored) == (REJECTED, False)
    assert inventory.available(product) == 1


async def test_get_reservation(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(5)
    order_id = str(uuid.uuid4())
    await inventory.stub.ReserveStock(reserve_request([item(product, 2)], order_id))
    got = await inventory.stub.GetReservation(pb.GetReservationRequest(order_id=order_id))
    assert got.status == RESERVED and [(i.product_id, i.quantity) for i in got.items] == [(product, 2)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.stub.GetReservation(pb.GetReservationRequest(order_id=str(uuid.uuid4())))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_products_includes_seed_catalogue_and_stock(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(7)
    await inventory.stub.ReserveStock(reserve_request([item(product, 2)]))
    listed = await inventory.stub.ListProducts(pb.ListProductsRequest())
    ids = {p.product_id for p in listed.products}
    assert "VLX-KB-001" in ids and product in ids
    only = await inventory.stub.ListProducts(pb.ListProductsRequest(product_ids=[product]))
    assert [(p.product_id, p.available, p.reserved) for p in only.products] == [(product, 5, 2)]
