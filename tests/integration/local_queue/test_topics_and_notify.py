"""Topics with subscriptions and LISTEN/NOTIFY wake-ups of the local bus, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.support.bus import new_bus_db
from valerix_common.bus.messages import MessagePublisher, MessageSender, OutgoingMessage
from valerix_common.db import make_pool
from valerix_common.embedded_pg import EmbeddedPostgres
from valerix_common.local_bus import (
    DEFAULT_SUBSCRIPTIONS,
    LocalQueue,
    LocalTopic,
    Pool,
    ensure_schema,
    notifier_for,
    stop_notifier,
    subscription_queue,
)
from valerix_common.local_bus.queue import MIGRATIONS


def msg(message_id: str | None = None, body: bytes = b'{"event": "x"}', **kwargs: Any) -> OutgoingMessage:
    return OutgoingMessage(message_id=message_id or str(uuid.uuid4()), body=body, **kwargs)


async def new_topic(pool: Pool, *subscriptions: str, **kwargs: Any) -> LocalTopic:
    topic = LocalTopic(pool, f"t-{uuid.uuid4().hex[:10]}", **kwargs)
    for name in subscriptions:
        await topic.create_subscription(name)
    return topic


async def test_topic_satisfies_the_sender_protocols(bus_pool: Pool) -> None:
    topic = await new_topic(bus_pool, "a")
    sender: MessageSender = topic
    publisher: MessagePublisher = topic
    await sender.check()
    await publisher.close()


async def test_a_send_is_copied_to_every_subscription_each_with_its_own_lock(bus_pool: Pool) -> None:
    topic = await new_topic(bus_pool, "orders", "analytics")
    assert await topic.subscriptions() == ["analytics", "orders"]
    assert await topic.publish(msg("e-1", b"one", application_properties={"type": "stock.changed"})) == 2
    orders = subscription_queue(bus_pool, topic.topic_name, "orders")
    analytics = subscription_queue(bus_pool, topic.topic_name, "analytics")
    got_orders = await orders.receive()
    got_analytics = await analytics.receive()
    assert [(m.message_id, m.body, m.delivery_count) for m in got_orders] == [("e-1", b"one", 1)]
    assert got_analytics[0].application_properties == {"type": "stock.changed"}
    # settling one subscription's copy leaves the other's alone
    await orders.complete(got_orders[0].lock_token)
    assert (await orders.stats())["active"] == 0
    await analytics.abandon(got_analytics[0].lock_token)
    again = await analytics.receive()
    assert [(m.message_id, m.delivery_count) for m in again] == [("e-1", 2)]


async def test_duplicate_detection_is_per_topic(bus_pool: Pool) -> None:
    topic = await new_topic(bus_pool, "s")
    other = await new_topic(bus_pool, "s")
    assert await topic.publish(msg("same-id")) == 1
    assert await topic.publish(msg("same-id")) == 0  # a repeat within the window: dropped
    assert await other.publish(msg("same-id")) == 1  # another topic has its own history
    received = await subscription_queue(bus_pool, topic.topic_name, "s").receive(10)
    assert [m.message_id for m in received] == ["same-id"]
    # completing the copy does not let a repeat through: the id history outlives the message
    await subscription_queue(bus_pool, topic.topic_name, "s").complete(received[0].lock_token)
    assert await topic.publish(msg("same-id")) == 0


async def test_without_subscriptions_a_message_is_dropped_and_late_subscribers_see_only_later_ones(
    bus_pool: Pool,
) -> None:
    topic = await new_topic(bus_pool)
    assert await topic.publish(msg("early")) == 0
    await topic.create_subscription("late")
    await topic.create_subscription("late")  # idempotent
    assert await topic.publish(msg("later")) == 1
    late = subscription_queue(bus_pool, topic.topic_name, "late")
    assert [m.message_id for m in await late.receive(10)] == ["later"]


async def test_a_subscription_dead_letters_after_its_max_delivery_count(bus_pool: Pool) -> None:
    topic = await new_topic(bus_pool, "poison")
    await topic.send(msg("bad"))
    sub = subscription_queue(bus_pool, topic.topic_name, "poison", max_delivery_count=2)
    for _ in range(2):
        (delivered,) = await sub.receive()
        await sub.abandon(delivered.lock_token)
    assert await sub.receive() == []
    (dead,) = await sub.dead_letters()
    assert (dead["message_id"], dead["reason"], dead["delivery_count"]) == ("bad", "MaxDeliveryCountExceeded", 2)


async def test_a_waiting_receiver_is_woken_by_notify_not_by_polling(bus_pool: Pool) -> None:
    """A poll interval far longer than the wait: only the NOTIFY can deliver the message within it."""
    topic = await new_topic(bus_pool, "fast")
    sub = subscription_queue(bus_pool, topic.topic_name, "fast")
    notifier = notifier_for(bus_pool)
    await notifier.ensure_listening()
    seen_before = notifier.received
    waiting = asyncio.create_task(sub.receive_wait(max_wait_s=20, poll_interval_s=60))
    await asyncio.sleep(0.3)  # the receiver has found nothing and is waiting
    assert not waiting.done()
    await topic.send(msg("wake-up"))
    got = await asyncio.wait_for(waiting, 15)
    assert [m.message_id for m in got] == ["wake-up"]
    assert notifier.received > seen_before


async def test_queue_sends_and_abandons_notify_too(bus_pool: Pool) -> None:
    queue = LocalQueue(bus_pool, f"q-{uuid.uuid4().hex[:10]}")
    waiting = asyncio.create_task(queue.receive_wait(max_wait_s=20, poll_interval_s=60))
    await asyncio.sleep(0.3)
    await queue.send(msg("queued"))
    (first,) = await asyncio.wait_for(waiting, 15)
    # the abandoned message is receivable at once: a waiting receiver is told
    waiting = asyncio.create_task(queue.receive_wait(max_wait_s=20, poll_interval_s=60))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await queue.abandon(first.lock_token)
    (again,) = await asyncio.wait_for(waiting, 15)
    assert (again.message_id, again.delivery_count) == ("queued", 2)


async def test_receive_wait_is_bounded_and_polls_without_notifications(bus_pool: Pool) -> None:
    queue = LocalQueue(bus_pool, f"q-{uuid.uuid4().hex[:10]}")
    assert await queue.receive_wait(max_wait_s=0.3, poll_interval_s=0.1) == []
    # a message inserted behind the bus's back (no NOTIFY) is still found by the poll fallback
    async with bus_pool.connection() as conn:
        await conn.execute(
            "INSERT INTO localbus.messages (queue_name, message_id, body) VALUES (%s, 'silent', 'x')",
            (queue.queue_name,),
        )
    got = await queue.receive_wait(max_wait_s=10, poll_interval_s=0.2)
    assert [m.message_id for m in got] == ["silent"]


async def test_the_listener_recovers_when_its_connection_is_killed(bus_pool: Pool) -> None:
    topic = await new_topic(bus_pool, "resilient")
    sub = subscription_queue(bus_pool, topic.topic_name, "resilient")
    notifier = notifier_for(bus_pool)
    await notifier.ensure_listening()
    async with bus_pool.connection() as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN localbus%%' AND pid <> pg_backend_pid()"
        )
    await topic.send(msg("after-kill"))
    got = await sub.receive_wait(max_wait_s=15, poll_interval_s=0.5)
    assert [m.message_id for m in got] == ["after-kill"]
    for _ in range(100):  # the listener comes back by itself
        if notifier._listening.is_set():
            break
        await asyncio.sleep(0.1)
    assert notifier._listening.is_set()
    waiting = asyncio.create_task(sub.receive_wait(max_wait_s=20, poll_interval_s=60))
    await asyncio.sleep(0.3)
    await topic.send(msg("after-recovery"))
    assert [m.message_id for m in await asyncio.wait_for(waiting, 15)] == ["after-recovery"]


async def test_upgrade_from_the_queue_only_schema_keeps_pending_messages(pg_server: EmbeddedPostgres | None) -> None:
    url = new_bus_db(pg_server)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        # the schema as deployed before topics existed: version 1 only, with a message waiting
        await conn.execute("CREATE SCHEMA localbus")
        await conn.execute(
            "CREATE TABLE localbus.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute((MIGRATIONS / "001_local_bus.sql").read_text())  # type: ignore[arg-type]
        await conn.execute("INSERT INTO localbus.schema_migrations (version, name) VALUES (1, '001_local_bus.sql')")
        await conn.execute(
            "INSERT INTO localbus.messages (queue_name, message_id, body) VALUES ('verify-order', 'old', 'x')"
        )
    pool = make_pool(url, name="localbus-upgrade", min_size=1, max_size=3, mode="password")
    await pool.open(wait=True)
    try:
        assert await ensure_schema(pool) == [2]
        assert [m.message_id for m in await LocalQueue(pool, "verify-order").receive()] == ["old"]
        for topic_name, names in DEFAULT_SUBSCRIPTIONS.items():
            assert await LocalTopic(pool, topic_name).subscriptions() == sorted(names)
    finally:
        await stop_notifier(pool)
        await pool.close()


async def test_a_batch_is_published_in_one_transaction_in_order_with_duplicates_dropped(bus_pool: Pool) -> None:
    topic = await new_topic(bus_pool, "a", "b")
    await topic.publish(msg("seen-before"))
    batch = [msg("b-1"), msg("seen-before"), msg("b-2"), msg("b-1")]
    await topic.send_batch(batch)
    for name in ("a", "b"):
        received = await subscription_queue(bus_pool, topic.topic_name, name).receive(10)
        assert [m.message_id for m in received] == ["seen-before", "b-1", "b-2"]
    await topic.send_batch([])  # nothing to do


async def test_a_batch_keeps_bodies_properties_and_schedules_and_without_detection_copies_everything(
    bus_pool: Pool,
) -> None:
    topic = await new_topic(bus_pool, "a", duplicate_detection_window_s=0)
    later = datetime.now(UTC) + timedelta(hours=1)
    await topic.send_batch([
        msg("p-1", body=b"one", application_properties={"type": "x"}, content_type="application/json"),
        msg("p-1", body=b"two"), msg("p-later", scheduled_enqueue_time_utc=later),
    ])
    received = await subscription_queue(bus_pool, topic.topic_name, "a").receive(10)
    assert [(m.message_id, m.body) for m in received] == [("p-1", b"one"), ("p-1", b"two")]  # the later one waits
    assert received[0].application_properties == {"type": "x"} and received[0].content_type == "application/json"
    assert (await subscription_queue(bus_pool, topic.topic_name, "a").stats())["scheduled"] == 1


async def test_a_failing_batch_publishes_none_of_it(bus_pool: Pool) -> None:
    topic = await new_topic(bus_pool, "all-or-nothing")
    bad = OutgoingMessage(message_id="bad", body=b"x", content_type="\x00")  # NUL cannot be stored in text
    with pytest.raises(psycopg.DataError):
        await topic.send_batch([msg("good-1"), bad, msg("good-2")])
    assert await subscription_queue(bus_pool, topic.topic_name, "all-or-nothing").receive(10) == []
    assert await topic.publish(msg("good-1")) == 1  # its id was not remembered either: the batch rolled back
