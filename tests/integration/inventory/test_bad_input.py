"""Bad input gets a proper status code and writes nothing."""

from __future__ import annotations

import uuid

import grpc
import pytest

from protos import ADMIN_TOKEN_METADATA
from protos import inventory_pb2 as pb
from tests.support.inventory import ADMIN_TOKEN, InventoryHarness, item

INVALID = grpc.StatusCode.INVALID_ARGUMENT

CASES = [
    ("empty items", lambda p: [], INVALID),
    ("duplicate product", lambda p: [item(p, 1), item(p, 2)], INVALID),
    ("zero quantity", lambda p: [item(p, 0)], INVALID),
    ("negative quantity", lambda p: [item(p, -3)], INVALID),
    ("huge quantity", lambda p: [item(p, 2_000_000_000)], INVALID),
    ("malformed product id", lambda p: [item("no spaces allowed", 1)], INVALID),
    ("too many items", lambda p: [item(f"P{n}", 1) for n in range(51)], INVALID),
    ("unknown product", lambda p: [item(p, 1), item("NO-SUCH-PRODUCT", 1)], grpc.StatusCode.NOT_FOUND),
]


@pytest.mark.parametrize(("name", "items", "code"), CASES, ids=[c[0] for c in CASES])
async def test_bad_reserve_requests_write_nothing(inventory: InventoryHarness, name: str, items, code) -> None:  # type: ignore[no-untyped-def]
    product = await inventory.new_product(10)
    before = inventory.reservation_rows()
    order_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.stub.ReserveStock(pb.ReserveStockRequest(order_id=order_id, items=items(product)))
    assert err.value.code() == code, err.value.details()
    assert err.value.details()
    assert inventory.reservation_rows() == before
    assert inventory.available(product) == 10


@pytest.mark.parametrize("order_id", ["", "not-a-uuid", "1234", "' OR 1=1 --"])
async def test_malformed_order_id_is_invalid_argument(inventory: InventoryHarness, order_id: str) -> None:
    product = await inventory.new_product(10)
    before = inventory.reservation_rows()
    for call in (
        inventory.stub.ReserveStock(pb.ReserveStockRequest(order_id=order_id, items=[item(product, 1)])),
        inventory.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id)),
        inventory.stub.GetReservation(pb.GetReservationRequest(order_id=order_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == INVALID
    assert inventory.reservation_rows() == before


async def test_restock_requires_admin_token(inventory: InventoryHarness) -> None:
    product = await inventory.new_product(3)
    for metadata in ((), ((ADMIN_TOKEN_METADATA, "wrong"),)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await inventory.stub.Restock(pb.RestockRequest(product_id=product, quantity=5), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert inventory.available(product) == 3
    restocked = await inventory.stub.Restock(
        pb.RestockRequest(product_id=product, quantity=5), metadata=((ADMIN_TOKEN_METADATA, ADMIN_TOKEN),)
    )
    assert restocked.available == 8 and inventory.conservation_holds(product)


async def test_restock_of_unknown_product_without_name_is_not_found(inventory: InventoryHarness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.stub.Restock(
            pb.RestockRequest(product_id="NEVER-SEEN", quantity=5), metadata=((ADMIN_TOKEN_METADATA, ADMIN_TOKEN),)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert inventory.sql("SELECT count(*) FROM products WHERE product_id = 'NEVER-SEEN'") == [(0,)]


async def test_set_chaos_validates_and_requires_admin(inventory: InventoryHarness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.stub.SetChaos(pb.ChaosSettings(gremlin_enabled=True))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.stub.SetChaos(
            pb.ChaosSettings(gremlin_enabled=True, gremlin_min_delay_s=5, gremlin_max_delay_s=1),
            metadata=((ADMIN_TOKEN_METADATA, ADMIN_TOKEN),),
        )
    assert err.value.code() == INVALID
    current = await inventory.stub.GetChaos(pb.GetChaosRequest())
    assert current.gremlin_enabled is False
