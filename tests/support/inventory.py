from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.identity import ORDER_SERVICE_CLIENT_ID
from devstack.identity.settings import INVENTORY_AUDIENCE
from inventory_service.config import InventoryConfig
from inventory_service.middleware.auth import CallerAuthSettings
from inventory_service.middleware.chaos import Chaos, ChaosSettings
from inventory_service.server import RunningInventory, start_inventory
from order_functions.infrastructure.inventory_credentials import BearerTokenInterceptor, CachedToken
from protos import ADMIN_TOKEN_METADATA, inventory_stub
from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc as pb_grpc
from tests import REPO_ROOT
from tests.support.identity import issuer
from valerix_common.bus.publishers import BusSettings
from valerix_common.embedded_pg import free_port
from valerix_common.jwt_auth import JwtSettings

ROOT = REPO_ROOT

ADMIN_TOKEN = "test-admin-token"


def inventory_config(url: str, caller_auth: CallerAuthSettings | None = None) -> InventoryConfig:
    """Caller check on, as everywhere: the test issuer's Order Service identity unless told otherwise."""
    return InventoryConfig(
        database_url=url, grpc_port=0, health_port=0, host="127.0.0.1", admin_token=ADMIN_TOKEN,
        pool_size=20, grace_seconds=5, caller_auth=caller_auth or order_service_caller_auth(),
    )


@dataclass
class InventoryHarness:
    running: RunningInventory
    stub: pb_grpc.InventoryServiceAsyncStub
    channel: grpc.aio.Channel
    db_url: str

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.grpc_port}"

    async def new_product(self, stock: int, prefix: str = "T") -> str:
        product_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
        await self.stub.Restock(
            pb.RestockRequest(product_id=product_id, quantity=stock, name=f"test {product_id}", price_cents=100),
            metadata=((ADMIN_TOKEN_METADATA, ADMIN_TOKEN),),
        )
        return product_id

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def available(self, product_id: str) -> int:
        return int(self.sql("SELECT available FROM products WHERE product_id = %s", product_id)[0][0])

    def conservation_holds(self, product_id: str) -> bool:
        rows = self.sql(
            "SELECT p.received, p.available, COALESCE(SUM(ri.quantity) FILTER (WHERE r.status = 'RESERVED'), 0)"
            " FROM products p LEFT JOIN reservation_items ri ON ri.product_id = p.product_id"
            " LEFT JOIN reservations r ON r.order_id = ri.order_id WHERE p.product_id = %s"
            " GROUP BY p.received, p.available",
            product_id,
        )
        received, available, reserved = rows[0]
        return bool(received == available + reserved and available >= 0)

    def reservation_rows(self) -> int:
        return int(self.sql("SELECT count(*) FROM reservations")[0][0])


def order_service_caller_auth() -> CallerAuthSettings:
    """The inventory's caller check against the test issuer: only the Order Service's identity gets in."""
    return CallerAuthSettings(
        JwtSettings(issuer().url, (INVENTORY_AUDIENCE,)), frozenset({ORDER_SERVICE_CLIENT_ID})
    )


def order_service_interceptor() -> BearerTokenInterceptor:
    """The Order Service's credential (a token from the test issuer), as the order side's channel carries it."""
    token = issuer().minter.mint(ORDER_SERVICE_CLIENT_ID, INVENTORY_AUDIENCE, application=True)

    async def fetch() -> tuple[str, float]:
        return token, time.time() + 3600

    return BearerTokenInterceptor(CachedToken(fetch))


def order_service_channel(target: str) -> grpc.aio.Channel:
    """A channel that calls as the Order Service, like the order side does."""
    return grpc.aio.insecure_channel(target, interceptors=[order_service_interceptor()])


@asynccontextmanager
async def running_inventory(
    inventory_db_url: str, caller_auth: CallerAuthSettings | None = None, bus_url: str = ""
) -> AsyncIterator[InventoryHarness]:
    """The inventory with its caller check on (the test issuer's Order Service identity unless told otherwise).

    `bus_url`: the local bus its outbox relay publishes reservation events to (none: they wait in the outbox)."""
    chaos = Chaos(ChaosSettings())
    config = inventory_config(inventory_db_url, caller_auth)
    if bus_url:
        config = dataclasses.replace(config, bus=BusSettings(local_bus_url=bus_url), outbox_poll_interval_s=0.2)
    running = await start_inventory(config, chaos)
    channel = order_service_channel(f"127.0.0.1:{running.grpc_port}")
    try:
        yield InventoryHarness(running, inventory_stub(channel), channel, inventory_db_url)
    finally:
        await channel.close()
        await running.stop(1)


def item(product_id: str, quantity: int) -> pb.LineItem:
    return pb.LineItem(product_id=product_id, quantity=quantity)


def reserve_request(items: list[pb.LineItem], order_id: str | None = None) -> pb.ReserveStockRequest:
    return pb.ReserveStockRequest(order_id=order_id or str(uuid.uuid4()), items=items)


def inventory_process_env(inventory_db_url: str) -> dict[str, str]:
    """Environment for `python -m inventory_service` on fresh loopback ports, admitting the test issuer's Order
    Service identity (`order_service_channel` / `order_service_interceptor` call as it)."""
    return {
        **os.environ,
        "INVENTORY_AUTH_ISSUER": issuer().url,
        "INVENTORY_AUTH_AUDIENCE": INVENTORY_AUDIENCE,
        "INVENTORY_ALLOWED_CALLERS": ORDER_SERVICE_CLIENT_ID,
        "INVENTORY_DATABASE_URL": inventory_db_url,
        "INVENTORY_GRPC_PORT": str(free_port()),
        "INVENTORY_HEALTH_PORT": str(free_port()),
        "INVENTORY_BIND_HOST": "127.0.0.1",
        "INVENTORY_ADMIN_TOKEN": "t",
        "PYTHONPATH": str(ROOT),
    }


def spawn_inventory(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "inventory_service"], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def wait_serving(target: str, deadline_s: float = 20) -> None:
    started = time.monotonic()
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() - started < deadline_s:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"inventory at {target} never became SERVING")
