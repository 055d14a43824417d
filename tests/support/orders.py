"""Calling the Order Service's functions directly, as the Functions host would, against real servers."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
import psycopg
from azure.functions.servicebus import ServiceBusMessage

import function_app
from order_functions import bootstrap
from order_functions.bootstrap import Adapters
from order_functions.infrastructure.local_queue import LocalQueue
from order_functions.infrastructure.messaging import ReceivedMessage
from tests.support.inventory import ADMIN_TOKEN, InventoryHarness
from valerix_common.local_bus import ORDER_SERVICE_SUBSCRIPTION, RESERVATION_EVENTS_TOPIC, subscription_queue

FUNCTIONS = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}


def http_request(
    method: str, route: str, body: Any = None, *, headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None, route_params: dict[str, str] | None = None, raw: bytes | None = None,
) -> func.HttpRequest:
    payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return func.HttpRequest(
        method=method, url=f"http://localhost:7071/api/{route}", body=payload,
        headers={"Content-Type": "application/json", **(headers or {})}, params=params or {},
        route_params=route_params or {},
    )


async def call(name: str, req: func.HttpRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
    resp: func.HttpResponse = await FUNCTIONS[name](req)
    body = json.loads(resp.get_body()) if resp.get_body() else {}
    return resp.status_code, body, dict(resp.headers)


def service_bus_message(message: ReceivedMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=message.body, message_id=message.message_id, delivery_count=message.delivery_count,
        application_properties=dict(message.application_properties), user_properties={},
        content_type=message.content_type, lock_token=message.lock_token,
    )


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

    async def checkout(self, items: list[tuple[str, int]], *, customer: str = "c-1", key: str | None = None
                       ) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {"Idempotency-Key": key} if key else {}
        body = {"customer_id": customer, "items": [{"product_id": p, "quantity": q} for p, q in items]}
        return await call("create_order", http_request("POST", "orders", body, headers=headers))

    async def deliver_verify(self, max_rounds: int = 5, *, raise_failures: bool = True) -> list[str]:
        """Feeds queued VerifyOrder messages to the trigger function like the host: complete on success, abandon
        on failure. Returns the ids handled; failures are re-raised, or counted in `verify_failures`."""
        queue = await self.queue()
        handled: list[str] = []
        for _ in range(max_rounds):
            batch = await queue.receive(max_messages=20)
            if not batch:
                break
            for message in batch:
                try:
                    await FUNCTIONS["verify_order"](service_bus_message(message))
                except Exception:
                    await queue.abandon(message.lock_token)
                    if raise_failures:
                        raise
                    self.verify_failures.append(message.message_id)
                    continue
                await queue.complete(message.lock_token)
                handled.append(message.message_id)
        return handled


    async def event_subscription(self) -> LocalQueue:
        """The Order Service's subscription to reservation-events on the local bus (as the Functions host polls it)."""
        pool = (await self.resources()).bus_pool
        assert pool is not None
        return subscription_queue(pool, RESERVATION_EVENTS_TOPIC, ORDER_SERVICE_SUBSCRIPTION, max_delivery_count=3)

    async def deliver_events(
        self, max_wait_s: float = 10.0, *, until_order: str | None = None, until_type: str = ""
    ) -> list[str]:
        """Feeds reservation events to their trigger like the host does (complete on success, abandon on failure),
        waiting on the bus's NOTIFY; stops once `until_order`'s decision (of `until_type`) was handled, or nothing
        came for `max_wait_s`. Returns the event types handled; failures are counted in `event_failures`."""
        queue = await self.event_subscription()
        handled: list[str] = []
        for _ in range(200):
            batch = await queue.receive_wait(20, max_wait_s=max_wait_s, poll_interval_s=0.1)
            if not batch:
                break
            done = False
            for message in batch:
                try:
                    await FUNCTIONS["reservation_events"](service_bus_message(message))
                except Exception:
                    await queue.abandon(message.lock_token)
                    self.event_failures.append(message.message_id)
                    continue
                await queue.complete(message.lock_token)
                handled.append(message.application_properties.get("type", ""))
                props = message.application_properties
                done = done or (props.get("order_id") == until_order and props.get("type", "").endswith(until_type))
            if done:
                break
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
        **overrides,
    }
    await bootstrap.shutdown()
    with environment(settings):
        try:
            harness = OrderHarness(inventory, orders_db_url)
            await harness.resources()  # migrations applied, clients up, as after the host's first call
            yield harness
        finally:
            await bootstrap.shutdown()


def new_key() -> str:
    return f"key-{uuid.uuid4().hex}"
