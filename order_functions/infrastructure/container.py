"""Clients created once per worker process and reused: database pools, the gRPC channel, the bus sender.

Async clients belong to an event loop; the Functions worker has one, so they are built lazily on first use in
that loop (and rebuilt only if a different loop asks, as a test session might).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from order_functions.application.service import OrderService
from order_functions.config import OrderConfig
from order_functions.infrastructure.inventory_client import GrpcInventory
from order_functions.infrastructure.local_queue import LocalQueue, ensure_schema
from order_functions.infrastructure.messaging import MessageSender
from order_functions.infrastructure.orders_repository import MIGRATIONS, OrdersRepository, Pool
from order_functions.infrastructure.servicebus_sender import AzureServiceBusSender
from valerix_common.db import make_pool
from valerix_common.env import env_float, env_int
from valerix_common.migrations import apply_migrations

log = logging.getLogger(__name__)


@dataclass
class Resources:
    config: OrderConfig
    pool: Pool
    bus_pool: Pool | None
    orders: OrdersRepository
    inventory: GrpcInventory
    bus: MessageSender
    service: OrderService
    loop: asyncio.AbstractEventLoop

    @property
    def bus_kind(self) -> str:
        return "local-queue" if isinstance(self.bus, LocalQueue) else "azure-service-bus"

    async def close(self) -> None:
        await self.bus.close()
        await self.inventory.close()
        await self.pool.close()
        if self.bus_pool is not None:
            await self.bus_pool.close()


_resources: Resources | None = None
_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def build_resources(config: OrderConfig) -> Resources:
    pool = make_pool(config.orders_database_url, name="orders", min_size=2, max_size=config.db_pool_size)
    await pool.open(wait=True, timeout=10)
    bus_pool: Pool | None = None
    try:
        async with pool.connection() as conn:
            await apply_migrations(conn, MIGRATIONS)
        bus: MessageSender
        if config.servicebus_namespace or config.servicebus_connection:
            bus = AzureServiceBusSender(
                config.verify_queue,
                namespace=config.servicebus_namespace,
                connection_string=config.servicebus_connection if not config.servicebus_namespace else "",
            )
        else:
            bus_pool = make_pool(config.local_bus_database_url, name="local-bus", min_size=1, max_size=10)
            await bus_pool.open(wait=True, timeout=10)
            await ensure_schema(bus_pool)
            bus = local_queue(bus_pool, config.verify_queue)
    except BaseException:
        await pool.close()
        if bus_pool is not None:
            await bus_pool.close()
        raise
    orders = OrdersRepository(pool, in_flight_s=config.idempotency_in_flight_s)
    inventory = GrpcInventory(
        config.inventory_target, tls=config.inventory_tls, admin_token=config.inventory_admin_token
    )
    service = OrderService(config, orders, inventory, bus)
    log.info("order service resources ready (bus: %s, inventory: %s)", type(bus).__name__, config.inventory_target)
    return Resources(config, pool, bus_pool, orders, inventory, bus, service, asyncio.get_running_loop())


def local_queue(pool: Pool, queue_name: str) -> LocalQueue:
    """The local queue with the same settings as the Bicep's `verify-order` (max delivery 10, 10 min window)."""
    return LocalQueue(
        pool,
        queue_name,
        lock_duration_s=env_float("LOCAL_BUS_LOCK_DURATION_S", 60.0, minimum=0.1),
        max_delivery_count=env_int("LOCAL_BUS_MAX_DELIVERY_COUNT", 10, minimum=1),
        duplicate_detection_window_s=env_float("LOCAL_BUS_DUPLICATE_WINDOW_S", 600.0, minimum=0),
    )


async def get_resources() -> Resources:
    global _resources
    loop = asyncio.get_running_loop()
    if _resources is not None and _resources.loop is loop:
        return _resources
    async with _locks.setdefault(loop, asyncio.Lock()):
        if _resources is None or _resources.loop is not loop:
            _resources = await build_resources(OrderConfig.from_env())
    return _resources


async def shutdown() -> None:
    global _resources
    if _resources is not None:
        resources, _resources = _resources, None
        await resources.close()
