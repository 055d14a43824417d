"""ReserveStock is one call of `reserve_stock` (migration 003): its decision is the documented rule
`domain.rules.decide`; bad input writes nothing. Against the real gRPC server and PostgreSQL."""

from __future__ import annotations

import random
import uuid

import grpc
import pytest

from inventory_service.domain.models import LineItem, Status
from inventory_service.domain.rules import decide
from protos import inventory_pb2 as pb
from tests.support.inventory import InventoryHarness, item, reserve_request

_PB_STATUS = {pb.RESERVATION_STATUS_RESERVED: Status.RESERVED, pb.RESERVATION_STATUS_REJECTED: Status.REJECTED}


async def test_the_sql_decision_is_the_documented_rule(inventory: InventoryHarness) -> None:
    rng = random.Random(14)
    # mixed case and punctuation: "first short product" must be by code point, as min() in decide()
    prefixes = ("a", "B", "b", "Z", "0", "a.b", "a_b", "a-b")
    outcomes = set()
    for _ in range(12):
        chosen = rng.sample(prefixes, rng.randint(1, 4))
        products = {await inventory.new_product(rng.randint(1, 4), prefix=p): 0 for p in chosen}
        available = {pid: inventory.available(pid) for pid in products}
        items = tuple(sorted(LineItem(pid, rng.randint(1, 5)) for pid in products))
        expected = decide(items, available)
        reply = await inventory.stub.ReserveStock(
            reserve_request([item(i.product_id, i.quantity) for i in items])
        )
        assert _PB_STATUS[reply.status] is expected.status
        assert (reply.short_product_id, reply.reason) == (expected.short_product_id, expected.reason)
        after = {pid: inventory.available(pid) for pid in products}
        if expected.status is Status.RESERVED:
            assert after == {i.product_id: available[i.product_id] - i.quantity for i in items}
        else:
            assert after == available  # all or nothing
        outcomes.add(expected.status)
    assert outcomes == {Status.RESERVED, Status.REJECTED}  # both branches were exercised


async def test_unknown_products_write_nothing_and_are_named(inventory: InventoryHarness) -> None:
    known = await inventory.new_product(5)
    order_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.stub.ReserveStock(
            reserve_request([item("no-such-b", 1), item(known, 1), item("no-such-a", 1)], order_id)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-a, no-such-b" in (err.value.details() or "")
    assert inventory.sql("SELECT count(*) FROM reservations WHERE order_id = %s", order_id) == [(0,)]
    assert inventory.sql("SELECT count(*) FROM outbox WHERE order_id = %s", order_id) == [(0,)]
    assert inventory.available(known) == 5
    # the order id stays unclaimed: the corrected request decides normally
    reply = await inventory.stub.ReserveStock(reserve_request([item(known, 2)], order_id))
    assert reply.status == pb.RESERVATION_STATUS_RESERVED and not reply.replayed
