"""Calling the Order Service's functions directly, as the Functions host would, against real servers."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import psycopg

import function_app
from devstack.functions_host import HostConfig, Outcome, QueuePump, read_functions
from order_functions import bootstrap
from order_functions.bootstrap import Adapters
from order_functions.infrastructure.local_queue import LocalQueue
from tests.support.identity import DEFAULT_CUSTOMER, bearer, order_service_auth_env
from tests.support.inventory import ADMIN_TOKEN, InventoryHarness
from valerix_common.local_bus import ORDER_SERVICE_SUBSCRIPTION, RESERVATION_EVENTS_TOPIC, subscription_queue

# The app's metadata read as the local host reads it (get_functions() may be called once per app).
APP_FUNCTIONS = read_functions(function_app.app, HostConfig())
FUNCTIONS: dict[str, Callable[..., Any]] = {
    **{f.name: f.user_function for f in APP_FUNCTIONS.http},
    **{f.name: f.user_function for f in APP_FUNCTIONS.queues},
    **{f.name: f.user_function for f in APP_FUNCTIONS.timers},
}
[VERIFY_FUNCTION] = [f for f in APP_FUNCTIONS.queues if f.name == "verify_order"]
[EVENTS_FUNCTION] = [f for f in APP_FUNCTIONS.queues if f.name == "reservation_events"]


def http_request(
    method: str, route: str, body: Any = None, *, headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None, route_params: dict[str, str] | None = None, raw: bytes | None = None,
    customer: str | None = DEFAULT_CUSTOMER, roles: tuple[str, ...] = ("ops",),
) -> func.HttpRequest:
    """A request as the host hands it over; signed in as `customer` (with `roles`) unless `customer` is None."""
    payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    auth = bearer(customer, *roles) if customer is not None else {}
    return func.HttpRequest(
        method=method, url=f"http://localhost:7071/api/{route}", body=payload,
        headers={"Content-Type": "application/json", **auth, **(headers or {})}, params=params or {},
        route_params=route_params or {},
    )


async def call(name: str, req: func.HttpRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
    resp: func.HttpResponse = await FUNCTIONS[name](req)
    body = json.loads(resp.get_body()) if resp.get_body() else {}
    return resp.status_code, body, dict(resp.headers)


@dataclass
class OrderHarness:
    inventory: InventoryHarness
    orders_db_url: str
    verify_failures: list[str] = field(default_factory=list)
    event_failures: list[str] = field(default_factory=list)

    async def resources(self) -> Adapters:
        """The real adapters behind the function app (integration tests arrange data through them)."""
        adapters = (await bootstrap.get_services()).adapters
        assert adapters is not None
        return adapters

    @asynccontextmanager
    async def counting_listings(self) -> AsyncIterator[list[float]]:
        """While open, every call the Order Service makes to the inventory's listing is recorded (its timeout) and
        still goes through; the list stays readable after."""
        adapter = (await self.resources()).inventory
        real_list = adapter.list_products
        asked: list[float] = []

        async def counting_list(timeout_s: float) -> Any:
            asked.append(timeout_s)
            return await real_list(timeout_s)

        adapter.list_products = counting_list  # type: ignore[method-assign]
        try:
            yield asked
        finally:
            adapter.list_products = real_list  # type: ignore[method-assign]

    async def queue(self) -> LocalQueue:
        bus = (await self.resources()).bus
        assert isinstance(bus, LocalQueue)
        return bus

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.orders_db_url) as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def count(self, table: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM {table}")[0][0])

    async def checkout(self, items: list[tuple[str, int]], *, customer: str = DEFAULT_CUSTOMER, key: str | None = None
                       ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """POST /orders signed in as `customer`, who is also named in the body."""
        headers = {"Idempotency-Key": key} if key else {}
        body = {"customer_id": customer, "items": [{"product_id": p, "quantity": q} for p, q in items]}
        return await call("create_order", http_request("POST", "orders", body, headers=headers, customer=customer,
                                                       roles=()))

    async def relay_outbox(self, wait_due_s: float = 5.0) -> None:
        """Runs the order outbox relay until nothing is unsent, waiting (at most `wait_due_s`) for the verify
        intents of pending orders to fall due, as the process's own kicks would."""
        outbox = (await self.resources()).outbox
        give_up = time.monotonic() + wait_due_s
        for attempt in range(1, 51):  # bounded: a bus that just came back may refuse a few passes
            try:
                await outbox.relay(10.0)
                break
            except Exception:
                if attempt == 50:
                    raise
                await asyncio.sleep(0.2)
        while True:
            await outbox.relay(10.0)
            rows = self.sql(
                "SELECT extract(epoch FROM min(v.due_at) - now())::float8 FROM verify_outbox v"
                " JOIN orders o USING (order_id) WHERE v.sent_at IS NULL AND o.status = 'pending'"
            )
            due_in = rows[0][0] if rows else None
            if due_in is None or time.monotonic() + due_in > give_up:
                return
            await asyncio.sleep(max(due_in, 0.0) + 0.01)

    async def deliver_verify(self, max_rounds: int = 5, *, raise_failures: bool = True) -> list[str]:
        """Relays the outbox, then feeds queued VerifyOrder messages to the trigger function through the local
        host's own queue pump (complete on success, abandon on failure). Returns the ids handled; failures are
        re-raised, or counted in `verify_failures`."""
        await self.relay_outbox()
        pump = QueuePump(VERIFY_FUNCTION, await self.queue())
        handled: list[str] = []
        for _ in range(max_rounds):
            deliveries = await pump.deliver_once(max_messages=20)
            if not deliveries:
                break
            for delivery in deliveries:
                if delivery.error is not None:
                    if raise_failures:
                        raise delivery.error
                    self.verify_failures.append(delivery.message_id)
                elif delivery.outcome is Outcome.COMPLETED:
                    handled.append(delivery.message_id)
        return handled


    async def event_subscription(self) -> LocalQueue:
        """The Order Service's subscription to reservation-events on the local bus (as the Functions host polls it)."""
        pool = (await self.resources()).bus_pool
        assert pool is not None
        return subscription_queue(pool, RESERVATION_EVENTS_TOPIC, ORDER_SERVICE_SUBSCRIPTION, max_delivery_count=3)

    async def deliver_events(
        self, max_wait_s: float = 10.0, *, until_order: str | None = None, until_type: str = ""
    ) -> list[str]:
        """Feeds reservation events to their trigger through the local host's own queue pump (complete on success,
        abandon on failure); stops once the function recorded `until_order`'s event of type `...until_type`, or
        nothing came for `max_wait_s`. Returns the message ids completed; failures go to `event_failures`."""
        pump = QueuePump(EVENTS_FUNCTION, await self.event_subscription())
        handled: list[str] = []
        idle_since = time.monotonic()
        for _ in range(2000):  # bounded; each idle round sleeps 50 ms
            deliveries = await pump.deliver_once(max_messages=20)
            for delivery in deliveries:
                if delivery.error is not None:
                    self.event_failures.append(delivery.message_id)
                elif delivery.outcome is Outcome.COMPLETED:
                    handled.append(delivery.message_id)
            if until_order is not None and self.sql(
                "SELECT 1 FROM consumed_events WHERE order_id = %s AND event_type LIKE %s",
                uuid.UUID(until_order), f"%{until_type}",
            ):
                break
            if deliveries:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= max_wait_s:
                break
            else:
                await asyncio.sleep(0.05)
        return handled


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@asynccontextmanager
async def order_app(inventory: InventoryHarness, orders_db_url: str, **overrides: str) -> AsyncIterator[OrderHarness]:
    """The function app's process-wide clients, rebuilt for these settings and closed afterwards."""
    settings = {
        "ORDERS_DATABASE_URL": orders_db_url,
        "INVENTORY_GRPC_TARGET": inventory.target,
        "INVENTORY_ADMIN_TOKEN": ADMIN_TOKEN,
        "INVENTORY_TIMEOUT_SECONDS": "2",
        "VERIFY_TIMEOUT_SECONDS": "10",
        "LOCAL_BUS_DUPLICATE_WINDOW_S": "600",
        # tests place many orders per customer quickly; the limit itself is tested with its own settings
        "CHECKOUT_RATE_PER_MINUTE": "6000",
        "CHECKOUT_RATE_BURST": "1000",
        **order_service_auth_env(),
        **overrides,
    }
    await function_app.shutdown()
    with environment(settings):
        try:
            harness = OrderHarness(inventory, orders_db_url)
            await harness.resources()  # migrations applied, clients up, as after the host's first call
            yield harness
        finally:
            await function_app.shutdown()


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"
