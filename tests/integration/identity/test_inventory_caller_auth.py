"""Only the Order Service's identity may reserve, read, release: the real gRPC server, real tokens over HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.identity import ORDER_SERVICE_CLIENT_ID, LocalIssuer
from devstack.identity.issuer import TOKEN_PATH
from devstack.identity.settings import INVENTORY_AUDIENCE, ORDERS_AUDIENCE
from inventory_service.middleware.auth import OPEN_METHODS, CallerAuthSettings
from order_functions.application.ports import InventoryUnavailable
from order_functions.infrastructure.inventory_credentials import (
    BearerTokenInterceptor,
    CachedToken,
    client_credentials_fetch,
)
from protos import inventory_pb2 as pb
from protos import inventory_stub
from tests import REPO_ROOT
from tests.support.inventory import (
    InventoryHarness,
    inventory_process_env,
    item,
    reserve_request,
    running_inventory,
    spawn_inventory,
    wait_serving,
)
from valerix_common.jwt_auth import JwtSettings

ROOT = REPO_ROOT


def caller_auth(issuer: LocalIssuer) -> CallerAuthSettings:
    return CallerAuthSettings(
        JwtSettings(issuer=issuer.url, audiences=(INVENTORY_AUDIENCE,)), frozenset({ORDER_SERVICE_CLIENT_ID})
    )


@pytest.fixture(scope="module")
async def guarded(issuer: LocalIssuer, inventory_db_url: str) -> AsyncIterator[InventoryHarness]:
    async with running_inventory(inventory_db_url, caller_auth(issuer)) as harness:
        yield harness


def order_service_token(issuer: LocalIssuer) -> CachedToken:
    return CachedToken(client_credentials_fetch(
        issuer.url + TOKEN_PATH, ORDER_SERVICE_CLIENT_ID, f"{INVENTORY_AUDIENCE}/.default"
    ))


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def assert_code(call: object, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()


async def test_the_order_service_identity_reserves_reads_and_releases(
    issuer: LocalIssuer, guarded: InventoryHarness
) -> None:
    product = await guarded.new_product(5)  # admin RPC: its admin token, no bearer needed
    token = order_service_token(issuer)
    fetched = issuer.requests[TOKEN_PATH]
    async with grpc.aio.insecure_channel(guarded.target, interceptors=[BearerTokenInterceptor(token)]) as channel:
        stub = inventory_stub(channel)
        order_id = str(uuid.uuid4())
        reply = await stub.ReserveStock(reserve_request([item(product, 2)], order_id), timeout=10)
        assert reply.status == pb.RESERVATION_STATUS_RESERVED
        assert (await stub.GetReservation(pb.GetReservationRequest(order_id=order_id), timeout=10)).order_id == order_id
        release = pb.ReleaseReservationRequest(order_id=order_id, reason="t")
        released = await stub.ReleaseReservation(release, timeout=10)
        assert released.restored
    assert issuer.requests[TOKEN_PATH] == fetched + 1  # one token for all three calls
    assert guarded.available(product) == 5


async def test_no_token_is_unauthenticated_and_changes_nothing(guarded: InventoryHarness) -> None:
    product = await guarded.new_product(5)
    order_id = str(uuid.uuid4())
    await assert_code(
        guarded.stub.ReserveStock(reserve_request([item(product, 1)], order_id), timeout=10),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    await assert_code(
        guarded.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id), timeout=10),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    await assert_code(
        guarded.stub.GetReservation(pb.GetReservationRequest(order_id=order_id), timeout=10),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    assert guarded.available(product) == 5
    assert guarded.sql("SELECT count(*) FROM reservations WHERE order_id = %s", order_id)[0][0] == 0


async def test_bad_tokens_are_unauthenticated(issuer: LocalIssuer, guarded: InventoryHarness) -> None:
    product = await guarded.new_product(5)
    app = issuer.minter
    for token in (
        app.mint(ORDER_SERVICE_CLIENT_ID, ORDERS_AUDIENCE, application=True),  # the API's audience, not inventory's
        app.mint(ORDER_SERVICE_CLIENT_ID, INVENTORY_AUDIENCE, application=True, extra={"exp": int(time.time()) - 300}),
        "not-a-token",
    ):
        await assert_code(
            guarded.stub.ReserveStock(reserve_request([item(product, 1)]), metadata=bearer(token), timeout=10),
            grpc.StatusCode.UNAUTHENTICATED,
        )
    assert guarded.available(product) == 5


async def test_a_valid_token_of_anyone_else_is_permission_denied(
    issuer: LocalIssuer, guarded: InventoryHarness
) -> None:
    product = await guarded.new_product(5)
    for token in (
        issuer.minter.mint("alice", INVENTORY_AUDIENCE),  # a customer
        issuer.minter.mint("ops-person", INVENTORY_AUDIENCE, roles=("ops",)),  # a role does not make you the service
        issuer.minter.mint("another-app", INVENTORY_AUDIENCE, application=True),
    ):
        await assert_code(
            guarded.stub.ReserveStock(reserve_request([item(product, 1)]), metadata=bearer(token), timeout=10),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    assert guarded.available(product) == 5


async def test_catalogue_and_health_stay_open(guarded: InventoryHarness) -> None:
    assert (await guarded.stub.ListProducts(pb.ListProductsRequest(), timeout=10)).products
    reply = await health_pb2_grpc.HealthStub(guarded.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_token_that_cannot_be_had_is_inventory_unavailable(guarded: InventoryHarness) -> None:
    fetch = client_credentials_fetch("http://127.0.0.1:9/token", ORDER_SERVICE_CLIENT_ID, "x/.default")
    unreachable = CachedToken(fetch)
    async with grpc.aio.insecure_channel(guarded.target, interceptors=[BearerTokenInterceptor(unreachable)]) as ch:
        with pytest.raises(InventoryUnavailable) as caught:
            await inventory_stub(ch).ReserveStock(reserve_request([item("P-1", 1)]), timeout=10)
    assert caught.value.code == "UNAUTHENTICATED"


def test_the_issuer_gives_the_service_token_only_to_known_clients(issuer: LocalIssuer) -> None:
    status, body = issuer.client_credentials(
        {"grant_type": ["client_credentials"], "client_id": ["alice"], "scope": [f"{INVENTORY_AUDIENCE}/.default"]}
    )
    assert (status, body["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_an_inventory_without_caller_auth_refuses_to_start_wherever_it_binds(inventory_db_url: str, host: str) -> None:
    """No loopback exemption: tests, `make up`, the chaos harness and the benches all present a token."""
    env = {**inventory_process_env(inventory_db_url), "INVENTORY_BIND_HOST": host}
    for name in ("INVENTORY_AUTH_ISSUER", "AUTH_ISSUER", "INVENTORY_AUTH_AUDIENCE", "INVENTORY_ALLOWED_CALLERS"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "inventory_service"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "token issuer is required" in done.stderr


async def test_the_product_path_reads_caller_auth_from_settings(issuer: LocalIssuer, inventory_db_url: str) -> None:
    env = {
        **inventory_process_env(inventory_db_url),
        "INVENTORY_AUTH_ISSUER": issuer.url, "INVENTORY_AUTH_AUDIENCE": INVENTORY_AUDIENCE,
        "INVENTORY_ALLOWED_CALLERS": ORDER_SERVICE_CLIENT_ID,
    }
    target = f"127.0.0.1:{env['INVENTORY_GRPC_PORT']}"
    proc = spawn_inventory(env)
    try:
        await wait_serving(target, deadline_s=60)
        token = issuer.minter.mint(ORDER_SERVICE_CLIENT_ID, INVENTORY_AUDIENCE, application=True)
        async with grpc.aio.insecure_channel(target) as channel:
            stub = inventory_stub(channel)
            products = (await stub.ListProducts(pb.ListProductsRequest(), timeout=10)).products
            order = reserve_request([item(products[0].product_id, 1)])
            await assert_code(stub.ReserveStock(order, timeout=10), grpc.StatusCode.UNAUTHENTICATED)
            reply = await stub.ReserveStock(order, metadata=bearer(token), timeout=10)
            assert reply.status == pb.RESERVATION_STATUS_RESERVED
            await stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order.order_id), metadata=bearer(token))
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    assert os.environ.get("INVENTORY_AUTH_ISSUER") is None  # nothing leaked into this process's settings


async def test_every_inventory_method_outside_the_open_list_needs_the_token(guarded: InventoryHarness) -> None:
    """Derived from the contract, so a method added later (ShipReservation) is checked without editing this."""
    service = pb.DESCRIPTOR.services_by_name["InventoryService"]
    protected = [m.name for m in service.methods if m.name not in OPEN_METHODS]
    assert {"ReserveStock", "GetReservation", "ReleaseReservation"} <= set(protected)
    for name in protected:
        # raw bytes: b"" is an empty message of any type
        method = f"/{service.full_name}/{name}"
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = guarded.channel.unary_unary(method)
        await assert_code(call(b"", timeout=10), grpc.StatusCode.UNAUTHENTICATED)
