"""The outbox relay against the real gRPC server, real PostgreSQL and the local bus (plus the Azure adapter's edge)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import grpc
import psycopg
import pytest

from inventory_service.domain.models import LineItem
from inventory_service.middleware.chaos import CRASH_EXIT_CODE, Chaos, ChaosSettings
from inventory_service.relay import OutboxRelay
from inventory_service.server import RunningInventory, start_inventory
from protos import inventory_pb2 as pb
from protos import inventory_stub
from tests.support.bus import new_bus_db
from tests.support.inventory import (
    ADMIN_TOKEN,
    inventory_config,
    inventory_process_env,
    item,
    order_service_channel,
    reserve_request,
    spawn_inventory,
    wait_serving,
)
from valerix_common.bus.azure_sender import AzureServiceBusSender
from valerix_common.bus.publishers import BusSettings
from valerix_common.db import make_pool
from valerix_common.embedded_pg import EmbeddedPostgres, free_port
from valerix_common.local_bus import (
    ORDER_SERVICE_SUBSCRIPTION,
    LocalQueue,
    LocalTopic,
    Pool,
    ensure_schema,
    stop_notifier,
    subscription_queue,
)

TOPIC = "reservation-events"
ADMIN = (("x-valerix-admin-token", ADMIN_TOKEN),)
EMULATOR = "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"


def new_inventory_db(pg_server: EmbeddedPostgres | None) -> str:
    if pg_server is None:
        pytest.skip("relay tests need the embedded PostgreSQL server")
    return pg_server.create_database(f"inventory_relay_{uuid.uuid4().hex[:8]}", "inventory_svc")


@asynccontextmanager
async def bus(url: str) -> AsyncIterator[tuple[Pool, LocalQueue]]:
    """The test's own view of the bus: the Order Service's subscription to reservation events."""
    pool = make_pool(url, name="relay-test-bus", min_size=1, max_size=4, mode="password")
    await pool.open(wait=True)
    try:
        await ensure_schema(pool)
        yield pool, subscription_queue(pool, TOPIC, ORDER_SERVICE_SUBSCRIPTION)
    finally:
        await stop_notifier(pool)
        await pool.close()


@asynccontextmanager
async def inventory_on_bus(db_url: str, bus_url: str, **settings: Any) -> AsyncIterator[RunningInventory]:
    config = replace(inventory_config(db_url), bus=BusSettings(local_bus_url=bus_url), **settings)
    running = await start_inventory(config, Chaos(ChaosSettings()))
    try:
        yield running
    finally:
        await running.stop(1)


async def drain(queue: LocalQueue, wanted: int, max_wait_s: float = 15) -> list[dict[str, Any]]:
    """Receives and completes until `wanted` messages arrived or the bounded wait ran out; returns their bodies."""
    bodies: list[dict[str, Any]] = []
    for _ in range(50):
        got = await queue.receive_wait(10, max_wait_s=max_wait_s, poll_interval_s=max_wait_s)
        for message in got:
            body = json.loads(message.body)
            assert message.message_id == body["event_id"]
            assert message.application_properties["type"] == body["type"]
            bodies.append(body)
            await queue.complete(message.lock_token)
        if not got or len(bodies) >= wanted:
            break
    return bodies


async def all_marked_sent(db_url: str, max_wait_s: float = 10) -> bool:
    """The bus may hand a message over before the relay's transaction marked its row: wait (bounded) for it."""
    for _ in range(int(max_wait_s / 0.05)):
        if not unsent(db_url):
            return True
        await asyncio.sleep(0.05)
    return False


def unsent(db_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT type, order_id, attempts, last_error FROM outbox WHERE sent_at IS NULL").fetchall()


async def test_the_relay_publishes_each_decision_at_once_and_marks_it_sent(pg_server: EmbeddedPostgres | None) -> None:
    db_url, bus_url = new_inventory_db(pg_server), new_bus_db(pg_server)
    # a poll interval far beyond the waits below: only the wake-on-commit can deliver in time
    async with bus(bus_url) as (_, orders), inventory_on_bus(db_url, bus_url, outbox_poll_interval_s=60) as running:
        async with order_service_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = inventory_stub(channel)
            product = f"R-{uuid.uuid4().hex[:8]}"
            await stub.Restock(pb.RestockRequest(product_id=product, quantity=3, name="relay test"), metadata=ADMIN)
            assert [b["type"] for b in await drain(orders, 1)] == ["stock.changed"]
            order_id = str(uuid.uuid4())
            await stub.ReserveStock(reserve_request([item(product, 2)], order_id))
            reserved, changed = await drain(orders, 2)
        assert (reserved["type"], reserved["order_id"]) == ("reservation.reserved", order_id)
        assert reserved["reservation"]["items"] == [{"product_id": product, "quantity": 2}]
        assert reserved["source"] == "valerix-inventory" and "traceparent" in reserved and reserved["occurred_at"]
        assert changed["type"] == "stock.changed" and changed["cause"] == "reserve"
        assert [(p["product_id"], p["available"], p["version"]) for p in changed["products"]] == [(product, 1, 2)]
        assert await all_marked_sent(db_url)
        assert running.relay is not None and running.relay[0].sent == 3


async def test_a_bus_outage_is_logged_retried_and_loses_nothing(
    pg_server: EmbeddedPostgres | None, caplog: pytest.LogCaptureFixture
) -> None:
    db_url, bus_url = new_inventory_db(pg_server), new_bus_db(pg_server)
    async with bus(bus_url) as (bus_pool, orders), inventory_on_bus(db_url, bus_url) as running:
        assert running.relay is not None
        relay = running.relay[0]
        async with bus_pool.connection() as conn:  # the bus breaks: every send now fails
            await conn.execute("ALTER TABLE localbus.subscriptions RENAME TO subscriptions_away")
        product = f"O-{uuid.uuid4().hex[:8]}"
        await running.repository.restock(product, 4, "outage test", 100)
        order_id = uuid.uuid4()
        await running.repository.reserve(order_id, (LineItem(product, 1),))
        for _ in range(100):
            if relay.failures >= 2:
                break
            await asyncio.sleep(0.1)
        assert relay.failures >= 2 and "subscriptions" in relay.last_error
        pending = unsent(db_url)
        assert len(pending) == 3 and max(attempts for _, _, attempts, _ in pending) >= 1
        assert any("subscriptions" in error for *_, error in pending)
        assert "outbox relay to reservation-events failed" in caplog.text
        report = running.monitor.report()  # the health side port tells, without failing the inventory
        assert report["status"] == "ok" and report["checks"]["event_relay"]["status"] == "failing"
        async with bus_pool.connection() as conn:  # the bus is back
            await conn.execute("ALTER TABLE localbus.subscriptions_away RENAME TO subscriptions")
        bodies = await drain(orders, 3, max_wait_s=40)
        assert sorted(b["type"] for b in bodies) == ["reservation.reserved", "stock.changed", "stock.changed"]
        assert await all_marked_sent(db_url)
        for _ in range(100):  # the loop records the success right after its transaction
            if not relay.failing:
                break
            await asyncio.sleep(0.1)
        assert running.monitor.report()["checks"]["event_relay"] == {
            "status": "ok", "destination": TOPIC, "sent": 3, "failures": relay.failures, "error": "",
        }


async def test_a_crash_after_commit_still_publishes_after_restart(pg_server: EmbeddedPostgres | None) -> None:
    """The real server and the real Schrödinger crash: the decision committed, the process died before replying
    (and before its relay could send); the restarted process sends the event."""
    db_url, bus_url = new_inventory_db(pg_server), new_bus_db(pg_server)
    env = {**inventory_process_env(db_url), "LOCAL_BUS_DATABASE_URL": bus_url, "SCHRODINGER_CRASH_RATE": "1",
           "OUTBOX_POLL_INTERVAL_S": "60"}
    target = f"127.0.0.1:{env['INVENTORY_GRPC_PORT']}"
    order_id = str(uuid.uuid4())
    product = f"C-{uuid.uuid4().hex[:8]}"
    async with bus(bus_url) as (_, orders):
        process = spawn_inventory(env)
        try:
            await wait_serving(target)
            async with order_service_channel(target) as channel:
                stub = inventory_stub(channel)
                await stub.Restock(pb.RestockRequest(product_id=product, quantity=2, name="crash test"),
                                   metadata=(("x-valerix-admin-token", "t"),))
                # the restock's event is out: the relay now sleeps until the next commit wakes it
                assert [b["type"] for b in await drain(orders, 1)] == ["stock.changed"]
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.ReserveStock(reserve_request([item(product, 1)], order_id), timeout=10)
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert await asyncio.to_thread(process.wait, 20) == CRASH_EXIT_CODE
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        with psycopg.connect(db_url) as conn:
            statuses = conn.execute("SELECT status FROM reservations WHERE order_id = %s", (order_id,)).fetchall()
        assert statuses == [("RESERVED",)]  # committed ...
        assert sorted(t for t, *_ in unsent(db_url)) == ["reservation.reserved", "stock.changed"]  # ... not sent
        restarted = spawn_inventory({**env, "SCHRODINGER_CRASH_RATE": "0"})
        try:
            await wait_serving(target)
            bodies = await drain(orders, 2, max_wait_s=20)
        finally:
            restarted.terminate()
            restarted.wait(20)
    assert sorted((b["type"], b["order_id"]) for b in bodies) == [
        ("reservation.reserved", order_id), ("stock.changed", order_id)
    ]
    assert await all_marked_sent(db_url)


async def test_batches_are_bounded_ordered_and_shared_by_replicas_without_repeats(
    pg_server: EmbeddedPostgres | None,
) -> None:
    db_url, bus_url = new_inventory_db(pg_server), new_bus_db(pg_server)
    running = await start_inventory(inventory_config(db_url), Chaos(ChaosSettings()))  # no bus: rows wait
    try:
        assert running.relay is None
        product = f"B-{uuid.uuid4().hex[:8]}"
        await running.repository.restock(product, 50, "batch test", 1)
        for _ in range(10):
            await running.repository.reserve(uuid.uuid4(), (LineItem(product, 1),))
        async with bus(bus_url) as (bus_pool, orders):
            topic = LocalTopic(bus_pool, TOPIC)
            one, two = (OutboxRelay(running.repository.pool, topic, destination=TOPIC, batch_size=4) for _ in range(2))
            assert await one.relay_once() == 4  # 21 rows wait: one restock, ten reservations with their stock
            total = 4
            for _ in range(20):
                sent = await asyncio.gather(one.relay_once(), two.relay_once())
                assert all(n <= 4 for n in sent)
                total += sum(sent)
                if sum(sent) == 0:
                    break
            assert total == 21
            bodies = await drain(orders, 21)
        versions = [p["version"] for b in bodies if b["type"] == "stock.changed" for p in b["products"]]
        assert sorted(versions) == list(range(1, 12))
        with psycopg.connect(db_url) as conn:  # each row was sent once: SKIP LOCKED kept the replicas apart
            assert conn.execute("SELECT DISTINCT attempts FROM outbox").fetchall() == [(1,)]
    finally:
        await running.stop(1)


class RecordingTopicSender:
    """Stands in for azure.servicebus.ServiceBusSender (a network link to a real namespace)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.batches = 0
        self.closed = False
        self._guard = threading.Lock()

    def send_messages(self, message: Any) -> None:
        with self._guard:
            self.batches += 1
            self.sent.extend(message if isinstance(message, list) else [message])

    def close(self) -> None:
        self.closed = True


async def test_the_relay_publishes_through_the_azure_topic_sender(pg_server: EmbeddedPostgres | None) -> None:
    sender = AzureServiceBusSender(TOPIC, connection_string=EMULATOR, topic=True)
    link = RecordingTopicSender()
    asked: list[str] = []

    def get_topic_sender(topic_name: str) -> RecordingTopicSender:
        asked.append(topic_name)
        return link

    sender._client.get_topic_sender = get_topic_sender  # type: ignore[method-assign,assignment]
    running = await start_inventory(inventory_config(new_inventory_db(pg_server)), Chaos(ChaosSettings()))
    try:
        order_id = uuid.uuid4()
        product = f"Z-{uuid.uuid4().hex[:8]}"
        await running.repository.restock(product, 2, "azure test", 1)
        await running.repository.reserve(order_id, (LineItem(product, 1),))
        relay = OutboxRelay(running.repository.pool, sender, destination=TOPIC, batch_size=1000)
        assert await relay.relay_once() == 3 and await relay.relay_once() == 0
        mine = [m for m in link.sent if m.application_properties.get("order_id") == str(order_id)]
        assert asked == [TOPIC] and len(link.sent) == 3 and len(mine) == 2
        assert link.batches == 1  # one claimed batch, one Service Bus batch
        for message in mine:
            body = json.loads(b"".join(message.body))
            assert message.message_id == body["event_id"] and message.content_type == "application/json"
            assert message.application_properties["type"] == body["type"]
    finally:
        await running.stop(1)
        await sender.close()


async def test_the_inventory_starts_and_decides_while_the_bus_is_unreachable(
    pg_server: EmbeddedPostgres | None,
) -> None:
    db_url = new_inventory_db(pg_server)
    nowhere = f"postgresql://nobody@127.0.0.1:{free_port()}/localbus"  # nothing listens there
    async with inventory_on_bus(db_url, nowhere) as running:
        assert running.relay is not None
        relay = running.relay[0]
        product = f"U-{uuid.uuid4().hex[:8]}"
        await running.repository.restock(product, 2, "no bus", 1)
        reservation = await running.repository.reserve(uuid.uuid4(), (LineItem(product, 1),))
        assert reservation.status.value == "RESERVED"
        for _ in range(300):  # the pool's connect timeout (10 s) bounds each attempt
            if relay.failures:
                break
            await asyncio.sleep(0.1)
        assert relay.failures >= 1 and running.monitor.report()["checks"]["event_relay"]["status"] == "failing"
        assert running.monitor.report()["status"] == "ok"
        assert len(unsent(db_url)) == 3  # waiting safely for the bus
