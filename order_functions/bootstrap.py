"""The composition root: the only module that knows both the use cases and the adapters.

`wire` builds the use cases and the read side on any implementation of the ports (unit tests pass fakes);
`open_adapters` connects the real ones from configuration; `get_services` keeps one set per worker process.
Async clients belong to an event loop; the Functions worker has one, so they are built lazily on first use in that
loop (and rebuilt only if a different loop asks, as a test session might).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import psycopg
from psycopg_pool import PoolTimeout

from order_functions.application.admin import BusStatus, ChaosAdmin
from order_functions.application.cancel import CancelOrder, ReleaseStock
from order_functions.application.catalogue import Catalogue
from order_functions.application.checkout import Checkout
from order_functions.application.identity import Authenticator
from order_functions.application.ownership import CustomerCheckout, CustomerOrders
from order_functions.application.ports import (
    BatchSender,
    CatalogueStore,
    ChaosControls,
    ConsumedEvents,
    Inventory,
    MessageSender,
    Metrics,
    OrderStore,
    Outbox,
    QueueStats,
    StoreUnavailable,
)
from order_functions.application.queries import HealthCheck, OrderQueries, ProductQueries
from order_functions.application.reconcile import IdleRatePurge, Reconcile
from order_functions.application.reservation_events import ApplyReservationEvent
from order_functions.application.settle_order import SettleOrder
from order_functions.application.ship import ShipOrder
from order_functions.application.transitions import OrderTransitions
from order_functions.application.verify_order import VerifyOrder
from order_functions.application.verify_queue import verify_message
from order_functions.config import OrderConfig
from order_functions.infrastructure.catalogue_repository import CatalogueRepository, ConsumedEventsRepository
from order_functions.infrastructure.inventory_client import GrpcInventory
from order_functions.infrastructure.inventory_credentials import BearerTokenInterceptor, inventory_token_from_env
from order_functions.infrastructure.jwt_validator import JwtAuthenticator
from order_functions.infrastructure.local_bus import local_queue
from order_functions.infrastructure.local_queue import LocalQueue, ensure_schema
from order_functions.infrastructure.metrics import OtelMetrics
from order_functions.infrastructure.order_outbox import Destinations, OrderOutboxRelay
from order_functions.infrastructure.orders_repository import MIGRATIONS, OrdersRepository
from order_functions.infrastructure.rate_limiter import IdleRateRows
from order_functions.infrastructure.relay_runner import RelayRunner
from order_functions.infrastructure.servicebus_sender import AzureServiceBusSender
from valerix_common.db import Pool, make_pool
from valerix_common.env import env_str
from valerix_common.local_bus import LocalTopic
from valerix_common.migrations import apply_migrations

log = logging.getLogger(__name__)


@dataclass
class Adapters:
    """The process's real clients. Integration tests reach them here; the interface never does."""

    config: OrderConfig
    pool: Pool
    bus_pool: Pool | None
    orders: OrdersRepository
    inventory: GrpcInventory
    bus: MessageSender
    loop: asyncio.AbstractEventLoop
    events_bus: MessageSender  # topic order-events
    outbox: RelayRunner

    @property
    def bus_kind(self) -> str:
        return "local-queue" if isinstance(self.bus, LocalQueue) else "azure-service-bus"

    async def close(self) -> None:
        await self.outbox.close()
        await self.events_bus.close()
        await self.bus.close()
        await self.inventory.close()
        await self.pool.close()
        if self.bus_pool is not None:
            await self.bus_pool.close()


@dataclass
class OrderServices:
    """Everything the interface may call: the use cases (write side) and the queries (read side)."""

    checkout: Checkout
    verify_order: VerifyOrder
    cancel_order: CancelOrder
    reconcile: Reconcile
    reservation_event: ApplyReservationEvent
    ship_order: ShipOrder
    catalogue: Catalogue
    orders: OrderQueries
    products: ProductQueries
    health: HealthCheck
    chaos: ChaosAdmin
    bus_status: BusStatus
    customer_checkout: CustomerCheckout  # the checkout as the HTTP API offers it: in the caller's name
    customer_orders: CustomerOrders  # reading, listing and cancelling as the caller may
    adapters: Adapters | None = None  # None when wired on fakes


def wire(
    config: OrderConfig,
    *,
    orders: OrderStore,
    inventory: Inventory,
    chaos: ChaosControls,
    bus: MessageSender,
    outbox: Outbox,
    metrics: Metrics,
    bus_kind: str,
    queue_stats: QueueStats | None,
    catalogue: CatalogueStore,
    consumed: ConsumedEvents,
    rate_rows: IdleRatePurge | None = None,
) -> OrderServices:
    catalogue_copy = Catalogue(catalogue, inventory, config.verify_timeout_s)
    transitions = OrderTransitions(orders, metrics, outbox)
    settle = SettleOrder(inventory, transitions, metrics)
    release = ReleaseStock(inventory, transitions, metrics, config.inventory_timeout_s)
    checkout = Checkout(orders, catalogue_copy, settle, outbox, config.inventory_timeout_s)
    cancel_order = CancelOrder(orders, release)
    order_queries = OrderQueries(orders)
    return OrderServices(
        checkout=checkout,
        verify_order=VerifyOrder(orders, settle, metrics, config.verify_queue, config.verify_timeout_s),
        cancel_order=cancel_order,
        reconcile=Reconcile(
            orders, release, outbox, metrics,
            stale_after_s=config.stale_after_s, give_up_after_s=config.give_up_after_s,
            rate_rows=rate_rows,  # its idle rows go on the reconciler's schedule
        ),
        reservation_event=ApplyReservationEvent(orders, transitions, catalogue, consumed),
        ship_order=ShipOrder(orders, inventory, transitions, metrics, config.ship_timeout_s),
        catalogue=catalogue_copy,
        orders=order_queries,
        products=ProductQueries(catalogue_copy, config.inventory_timeout_s),
        health=HealthCheck(orders, inventory, bus, bus_kind),
        chaos=ChaosAdmin(chaos, config.admin_api_enabled),
        bus_status=BusStatus(bus_kind, config.verify_queue, queue_stats),
        customer_checkout=CustomerCheckout(checkout, config.order_caps, config.checkout_rate),
        customer_orders=CustomerOrders(order_queries, cancel_order),
    )


async def _open_pool(url: str, name: str, min_size: int, max_size: int) -> Pool:
    pool = make_pool(url, name=name, min_size=min_size, max_size=max_size)
    try:
        await pool.open(wait=True, timeout=10)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        await pool.close()
        raise StoreUnavailable(f"{name} database unavailable: {type(exc).__name__}: {exc}"[:500]) from exc
    return pool


async def _open_bus(config: OrderConfig) -> tuple[MessageSender, BatchSender, Pool | None]:
    """The verify-order queue's sender, the order-events topic's sender, and the local bus's pool if local."""
    if config.servicebus_namespace or config.servicebus_connection:
        connection = config.servicebus_connection if not config.servicebus_namespace else ""
        queue = AzureServiceBusSender(
            config.verify_queue, namespace=config.servicebus_namespace, connection_string=connection
        )
        topic = AzureServiceBusSender(
            config.order_events_topic, namespace=config.servicebus_namespace, connection_string=connection,
            topic=True,
        )
        return queue, topic, None
    bus_pool = await _open_pool(config.local_bus_database_url, "local-bus", 1, 10)
    try:
        await ensure_schema(bus_pool)
    except BaseException:
        await bus_pool.close()
        raise
    return local_queue(bus_pool, config.verify_queue), LocalTopic(bus_pool, config.order_events_topic), bus_pool


async def open_adapters(config: OrderConfig) -> Adapters:
    pool = await _open_pool(config.orders_database_url, "orders", 2, config.db_pool_size)
    try:
        async with pool.connection() as conn:
            await apply_migrations(conn, MIGRATIONS)
        bus, events_bus, bus_pool = await _open_bus(config)
    except BaseException:
        await pool.close()
        raise
    orders = OrdersRepository(pool, in_flight_s=config.idempotency_in_flight_s)
    inventory = GrpcInventory(
        config.inventory_target, tls=config.inventory_tls, admin_token=config.inventory_admin_token,
        interceptors=inventory_interceptors(),
    )
    log.info("order service adapters ready (bus: %s, inventory: %s)", type(bus).__name__, config.inventory_target)
    relay = OrderOutboxRelay(
        pool,
        Destinations(events=events_bus, events_name=config.order_events_topic, verify=bus,
                     verify_name=config.verify_queue),
        verify_message,
        send_timeout_s=config.bus_send_timeout_s,
    )
    outbox = RelayRunner(relay)
    outbox.kick()  # rows a previous process left unsent go out now, not at the reconciler's next tick
    return Adapters(config, pool, bus_pool, orders, inventory, bus, asyncio.get_running_loop(), events_bus, outbox)


def inventory_interceptors() -> list[BearerTokenInterceptor]:
    """The Order Service's own credential on every inventory call (INVENTORY_AUTH_*, docs/identity.md)."""
    if not env_str("INVENTORY_AUTH_AUDIENCE"):
        log.warning("INVENTORY_AUTH_AUDIENCE is not set: calling the inventory without a credential")
        return []
    return [BearerTokenInterceptor(inventory_token_from_env())]


async def build(config: OrderConfig) -> OrderServices:
    adapters = await open_adapters(config)
    services = wire(
        config,
        orders=adapters.orders,
        inventory=adapters.inventory,
        chaos=adapters.inventory,
        bus=adapters.bus,
        outbox=adapters.outbox,
        metrics=OtelMetrics(adapters.pool, adapters.bus),
        bus_kind=adapters.bus_kind,
        queue_stats=adapters.bus if isinstance(adapters.bus, LocalQueue) else None,
        catalogue=CatalogueRepository(adapters.pool),
        consumed=ConsumedEventsRepository(adapters.pool),
        rate_rows=IdleRateRows(adapters.pool),  # the limit itself is in the order write, shared by every instance
    )
    services.adapters = adapters
    return services


_services: OrderServices | None = None
_authenticator: Authenticator | None = None
_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


def ready_services() -> OrderServices | None:
    """The services already built for this event loop, without waiting; None before (or during) a cold start."""
    loop = asyncio.get_running_loop()
    if _services is not None and _services.adapters is not None and _services.adapters.loop is loop:
        return _services
    return None


async def get_services() -> OrderServices:
    global _services
    if (ready := ready_services()) is not None:
        return ready
    loop = asyncio.get_running_loop()
    async with _locks.setdefault(loop, asyncio.Lock()):
        if _services is None or _services.adapters is None or _services.adapters.loop is not loop:
            _services = await build(OrderConfig.from_env())
    return _services


def get_authenticator() -> Authenticator:
    """The process's token validator (AUTH_* settings), built on first use; it needs no database."""
    global _authenticator
    if _authenticator is None:
        _authenticator = JwtAuthenticator.from_env()
    return _authenticator


async def shutdown() -> None:
    global _services, _authenticator
    _authenticator = None
    if _services is not None:
        services, _services = _services, None
        if services.adapters is not None:
            await services.adapters.close()
