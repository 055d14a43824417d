"""The PostgreSQL stand-in for the Service Bus queue, against a real PostgreSQL (no mocks)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from order_functions.infrastructure.local_queue import LocalQueue, ensure_schema  # the old path still works
from order_functions.infrastructure.messaging import MessageLockLost, MessageSender, OutgoingMessage, ReceivedMessage
from tests.support.bus import new_bus_db
from valerix_common.db import Pool, make_pool
from valerix_common.embedded_pg import EmbeddedPostgres


def queue(pool: Pool, **kwargs: Any) -> LocalQueue:
    """A fresh queue name per test keeps tests independent in the shared database."""
    return LocalQueue(pool, f"q-{uuid.uuid4().hex[:10]}", **kwargs)


def msg(message_id: str | None = None, body: bytes = b'{"order_id": "x"}', **kwargs: Any) -> OutgoingMessage:
    return OutgoingMessage(message_id=message_id or str(uuid.uuid4()), body=body, **kwargs)


async def receive_within(q: LocalQueue, timeout_s: float, max_messages: int = 1) -> list[ReceivedMessage]:
    """Polls until something is received or the (bounded) time runs out."""
    deadline = time.monotonic() + timeout_s
    for _ in range(1000):
        got = await q.receive(max_messages)
        if got or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)
    return []


async def raises_lock_lost(call: Callable[[], Awaitable[Any]]) -> None:
    with pytest.raises(MessageLockLost):
        await call()


# --- basics --------------------------------------------------------------------------------------------------


async def test_satisfies_message_sender_protocol(bus_pool: Pool) -> None:
    sender: MessageSender = queue(bus_pool)
    await sender.check()
    await sender.close()


async def test_send_receive_complete(bus_pool: Pool) -> None:
    q = queue(bus_pool)
    await q.send(msg("m-1", b"hello", application_properties={"attempt": "1"}, content_type="text/plain"))
    await q.send(msg("m-2", b"second"))
    got = await q.receive(max_messages=5)
    assert [m.message_id for m in got] == ["m-1", "m-2"]
    first = got[0]
    assert first.body == b"hello"
    assert first.application_properties == {"attempt": "1"}
    assert first.content_type == "text/plain"
    assert first.delivery_count == 1
    assert got[0].sequence_number < got[1].sequence_number
    assert first.enqueued_time_utc.tzinfo is not None and first.locked_until_utc > first.enqueued_time_utc
    assert first.lock_token != got[1].lock_token
    for m in got:
        await q.complete(m.lock_token)
    assert await q.receive(5) == []
    await raises_lock_lost(lambda: q.complete(first.lock_token))  # completing twice: the lock is gone
    stats = await q.stats()
    assert stats["completed"] == 2 and stats["active"] == 0 and stats["redeliveries"] == 0


async def test_queues_are_independent(bus_pool: Pool) -> None:
    a, b = queue(bus_pool), queue(bus_pool)
    await a.send(msg("same-id"))
    await b.send(msg("same-id"))  # duplicate detection is per queue
    assert [m.message_id for m in await a.receive(5)] == ["same-id"]
    assert [m.message_id for m in await b.receive(5)] == ["same-id"]


# --- peek-lock -----------------------------------------------------------------------------------------------


async def test_locked_message_is_invisible_then_redelivered_after_lock_expiry(bus_pool: Pool) -> None:
    q = queue(bus_pool, lock_duration_s=0.4)
    await q.send(msg("m"))
    first = (await q.receive())[0]
    assert first.delivery_count == 1
    assert await q.receive() == []  # locked
    assert (await q.stats())["locked"] == 1
    again = await receive_within(q, 3.0)
    assert len(again) == 1
    second = again[0]
    assert second.message_id == "m" and second.delivery_count == 2
    assert second.lock_token != first.lock_token
    # The first receiver's lock expired and someone else holds the message now.
    await raises_lock_lost(lambda: q.complete(first.lock_token))
    await raises_lock_lost(lambda: q.abandon(first.lock_token))
    await raises_lock_lost(lambda: q.renew_lock(first.lock_token))
    await q.complete(second.lock_token)
    assert await q.receive() == []


async def test_complete_with_expired_lock_raises_even_if_nobody_took_it(bus_pool: Pool) -> None:
    q = queue(bus_pool, lock_duration_s=0.3)
    await q.send(msg("m"))
    m = (await q.receive())[0]
    await asyncio.sleep(0.45)
    await raises_lock_lost(lambda: q.complete(m.lock_token))
    await raises_lock_lost(lambda: q.dead_letter(m.lock_token, "Poison", "x"))
    redelivered = await q.receive()
    assert [r.delivery_count for r in redelivered] == [2]
    await q.complete(redelivered[0].lock_token)


async def test_unknown_or_malformed_tokens_raise_lock_lost(bus_pool: Pool) -> None:
    q = queue(bus_pool)
    for token in (str(uuid.uuid4()), "not-a-uuid", ""):
        await raises_lock_lost(lambda t=token: q.complete(t))  # type: ignore[misc]
        await raises_lock_lost(lambda t=token: q.abandon(t))  # type: ignore[misc]
        await raises_lock_lost(lambda t=token: q.dead_letter(t, "r", "d"))  # type: ignore[misc]
        await raises_lock_lost(lambda t=token: q.renew_lock(t))  # type: ignore[misc]


async def test_abandon_redelivers_at_once(bus_pool: Pool) -> None:
    q = queue(bus_pool, lock_duration_s=30)
    await q.send(msg("m"))
    first = (await q.receive())[0]
    await q.abandon(first.lock_token)
    again = await q.receive()
    assert [(m.message_id, m.delivery_count) for m in again] == [("m", 2)]
    await raises_lock_lost(lambda: q.complete(first.lock_token))
    await q.complete(again[0].lock_token)


async def test_renew_lock_extends_the_lock(bus_pool: Pool) -> None:
    q = queue(bus_pool, lock_duration_s=0.5)
    await q.send(msg("m"))
    m = (await q.receive())[0]
    await asyncio.sleep(0.3)
    renewed = await q.renew_lock(m.lock_token)
    assert renewed > m.locked_until_utc
    await asyncio.sleep(0.35)  # past the original expiry, within the renewed one
    assert await q.receive() == []
    await q.complete(m.lock_token)
    assert (await q.stats())["completed"] == 1


# --- dead-lettering ------------------------------------------------------------------------------------------


async def test_max_delivery_count_by_lock_expiry_dead_letters(bus_pool: Pool) -> None:
    q = queue(bus_pool, lock_duration_s=0.3, max_delivery_count=3)
    await q.send(msg("poison", b"bad body"))
    counts = []
    for _ in range(3):
        got = await receive_within(q, 3.0)
        assert len(got) == 1
        counts.append(got[0].delivery_count)
    assert counts == [1, 2, 3]
    await asyncio.sleep(0.45)  # third lock expires; a fourth delivery is not allowed
    assert await q.receive(5) == []
    letters = await q.dead_letters()
    assert [(d["message_id"], d["reason"], d["delivery_count"], d["body"]) for d in letters] == [
        ("poison", "MaxDeliveryCountExceeded", 3, "bad body")
    ]
    await asyncio.sleep(0.1)
    assert await q.receive(5) == []
    stats = await q.stats()
    assert stats["dead_lettered"] == 1 and stats["active"] == 0 and stats["locked"] == 0


async def test_dead_lettered_message_does_not_block_the_next_one(bus_pool: Pool) -> None:
    q = queue(bus_pool, lock_duration_s=0.3, max_delivery_count=1)
    await q.send(msg("poison"))
    assert len(await q.receive()) == 1
    await asyncio.sleep(0.45)
    await q.send(msg("good"))
    got = await q.receive()  # picks the poison message first, dead-letters it and goes on
    assert [m.message_id for m in got] == ["good"]
    assert [d["message_id"] for d in await q.dead_letters()] == ["poison"]


async def test_abandon_on_last_delivery_dead_letters(bus_pool: Pool) -> None:
    q = queue(bus_pool, lock_duration_s=30, max_delivery_count=2)
    await q.send(msg("m"))
    first = (await q.receive())[0]
    await q.abandon(first.lock_token)
    second = (await q.receive())[0]
    assert second.delivery_count == 2
    await q.abandon(second.lock_token)
    assert await q.receive() == []
    letters = await q.dead_letters()
    assert [(d["message_id"], d["reason"], d["delivery_count"]) for d in letters] == [
        ("m", "MaxDeliveryCountExceeded", 2)
    ]


async def test_explicit_dead_letter(bus_pool: Pool) -> None:
    q = queue(bus_pool)
    await q.send(msg("m", b'{"order_id": "o-1"}', application_properties={"k": "v"}))
    m = (await q.receive())[0]
    await q.dead_letter(m.lock_token, "UnknownOrder", "order o-1 does not exist")
    assert await q.receive() == []
    await raises_lock_lost(lambda: q.complete(m.lock_token))
    [letter] = await q.dead_letters()
    assert letter["message_id"] == "m"
    assert letter["reason"] == "UnknownOrder"
    assert letter["description"] == "order o-1 does not exist"
    assert letter["delivery_count"] == 1
    assert letter["body"] == '{"order_id": "o-1"}'
    assert letter["application_properties"] == {"k": "v"}


# --- duplicate detection and scheduling ---------------------------------------------------------------------


async def test_duplicate_within_window_is_dropped_and_allowed_after_it(bus_pool: Pool) -> None:
    q = queue(bus_pool, duplicate_detection_window_s=0.5)
    await q.send(msg("verify-o-1", b"first"))
    await q.send(msg("verify-o-1", b"second"))  # accepted, dropped
    got = await q.receive(5)
    assert [(m.message_id, m.body) for m in got] == [("verify-o-1", b"first")]
    await q.complete(got[0].lock_token)
    await q.send(msg("verify-o-1", b"third"))  # still within the window, although the first was completed
    assert await q.receive(5) == []
    await asyncio.sleep(0.6)
    await q.send(msg("verify-o-1", b"fourth"))
    got = await q.receive(5)
    assert [(m.message_id, m.body, m.delivery_count) for m in got] == [("verify-o-1", b"fourth", 1)]


async def test_concurrent_duplicate_sends_enqueue_once(bus_pool: Pool) -> None:
    q = queue(bus_pool)
    await asyncio.gather(*(q.send(msg("dup", str(i).encode())) for i in range(8)))
    got = await q.receive(10)
    assert len(got) == 1 and (await q.stats())["active"] == 1


async def test_expired_duplicate_records_are_purged_in_bounded_batches(bus_pool: Pool) -> None:
    q = queue(bus_pool, duplicate_detection_window_s=0.3)
    for i in range(5):
        await q.send(msg(f"id-{i}"))
    assert await q.purge_expired_duplicates() == 0  # still within the window
    await asyncio.sleep(0.4)
    assert await q.purge_expired_duplicates(limit=2) == 2
    assert await q.purge_expired_duplicates(limit=100) == 3
    assert await q.purge_expired_duplicates() == 0


async def test_scheduled_message_is_invisible_until_its_time(bus_pool: Pool) -> None:
    q = queue(bus_pool)
    at = datetime.now(UTC) + timedelta(seconds=0.6)
    await q.send(msg("later", scheduled_enqueue_time_utc=at))
    await q.send(msg("now"))
    assert [m.message_id for m in await q.receive(5)] == ["now"]
    stats = await q.stats()
    assert stats["scheduled"] == 1
    assert await q.receive(5) == []
    got = await receive_within(q, 3.0)
    assert [m.message_id for m in got] == ["later"]
    assert datetime.now(UTC) >= at - timedelta(milliseconds=50)  # same machine: the clocks agree closely


# --- concurrency ---------------------------------------------------------------------------------------------


async def test_concurrent_receivers_get_every_message_exactly_once(bus_pool: Pool) -> None:
    name = f"q-{uuid.uuid4().hex[:10]}"
    sender = LocalQueue(bus_pool, name)
    ids = [f"m-{i}" for i in range(50)]
    for message_id in ids:
        await sender.send(msg(message_id))

    async def receiver() -> list[str]:
        q = LocalQueue(bus_pool, name)
        seen: list[str] = []
        for _ in range(200):  # bounded
            got = await q.receive(max_messages=2)
            if not got:
                return seen  # whatever is left is locked by other receivers, who complete it
            for m in got:
                assert m.delivery_count == 1
                seen.append(m.message_id)
                await q.complete(m.lock_token)
        return seen

    results = await asyncio.wait_for(asyncio.gather(*(receiver() for _ in range(8))), timeout=30)
    delivered = [m for r in results for m in r]
    assert sorted(delivered) == sorted(ids)  # all of them, none twice
    assert sum(1 for r in results if r) >= 2  # the receivers really did run side by side
    stats = await sender.stats()
    assert stats["completed"] == 50 and stats["active"] == 0 and stats["redeliveries"] == 0


# --- introspection -------------------------------------------------------------------------------------------


async def test_stats_and_dead_letters_report_the_right_numbers(bus_pool: Pool) -> None:
    q = queue(bus_pool, lock_duration_s=30)
    assert await q.stats() == {
        "active": 0,
        "available": 0,
        "scheduled": 0,
        "locked": 0,
        "dead_lettered": 0,
        "completed": 0,
        "redeliveries": 0,
    }
    for i in range(4):
        await q.send(msg(f"m-{i}"))
    await q.send(msg("sched", scheduled_enqueue_time_utc=datetime.now(UTC) + timedelta(minutes=5)))
    a = (await q.receive())[0]  # m-0: abandon, redeliver, complete -> 1 redelivery, completed
    await q.abandon(a.lock_token)
    a2 = (await q.receive())[0]
    assert a2.message_id == "m-0" and a2.delivery_count == 2
    await q.complete(a2.lock_token)
    b = (await q.receive())[0]  # m-1: dead-lettered
    await q.dead_letter(b.lock_token, "Bad", "broken")
    c = (await q.receive())[0]  # m-2: abandoned once, then held locked -> 1 more redelivery
    await q.abandon(c.lock_token)
    c2 = (await q.receive())[0]
    assert c2.message_id == "m-2"
    # m-3 stays available.
    assert await q.stats() == {
        "active": 2,  # m-2 (locked) and m-3
        "available": 1,
        "scheduled": 1,
        "locked": 1,
        "dead_lettered": 1,
        "completed": 1,
        "redeliveries": 2,
    }
    letters = await q.dead_letters()
    assert [(d["message_id"], d["reason"], d["description"], d["delivery_count"]) for d in letters] == [
        ("m-1", "Bad", "broken", 1)
    ]
    assert await q.dead_letters(limit=0) == []


# --- schema ------------------------------------------------------------------------------------------------


async def test_ensure_schema_is_idempotent_and_leaves_public_schema_migrations_alone(
    pg_server: EmbeddedPostgres | None,
) -> None:
    url = new_bus_db(pg_server)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE public.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute("INSERT INTO public.schema_migrations (version, name) VALUES (1, '001_orders.sql')")
    pool = make_pool(url, name="localbus-schema-test", min_size=1, max_size=1, mode="password")
    await pool.open(wait=True)
    try:
        q = LocalQueue(pool, "verify-order")
        with pytest.raises(psycopg.errors.UndefinedTable):
            await q.check()  # no schema yet: the health check fails
        assert await LocalQueue.ensure_schema(pool) == [1, 2]
        assert await ensure_schema(pool) == []
        await q.check()
        async with pool.connection() as conn:
            # The pool's only connection came back with its default search_path.
            cur = await conn.execute("SELECT current_schemas(false) AS s")
            row = await cur.fetchone()
            assert row is not None and row["s"] == ["public"]
            cur = await conn.execute("SELECT version, name FROM public.schema_migrations ORDER BY version")
            assert await cur.fetchall() == [{"version": 1, "name": "001_orders.sql"}]
            cur = await conn.execute("SELECT version, name FROM localbus.schema_migrations ORDER BY version")
            assert await cur.fetchall() == [
                {"version": 1, "name": "001_local_bus.sql"},
                {"version": 2, "name": "002_topics.sql"},
            ]
        await q.send(msg("works"))
        assert [m.message_id for m in await q.receive()] == ["works"]
    finally:
        await pool.close()


async def test_ensure_schema_concurrently(pg_server: EmbeddedPostgres | None) -> None:
    pool = make_pool(new_bus_db(pg_server), name="localbus-concurrent", min_size=1, max_size=4, mode="password")
    await pool.open(wait=True)
    try:
        applied = await asyncio.gather(*(ensure_schema(pool) for _ in range(4)))
        # each migration is its own locked transaction: one caller may apply 1 and another 2, never one twice
        # and never 2 before 1
        assert sorted(v for versions in applied for v in versions) == [1, 2], applied
        assert all(versions == sorted(versions) for versions in applied), applied
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT version FROM localbus.schema_migrations ORDER BY version")
            assert [r["version"] for r in await cur.fetchall()] == [1, 2]
    finally:
        await pool.close()


async def test_check_raises_when_the_database_is_unreachable(pg_server: EmbeddedPostgres | None) -> None:
    if pg_server is None:
        pytest.skip("needs the embedded server")
    url = f"postgresql://localbus_svc@127.0.0.1:{pg_server.port}/no_such_database_{uuid.uuid4().hex[:6]}"
    pool = make_pool(url, name="localbus-down", min_size=0, max_size=1, mode="password")
    pool.timeout = 1.0
    await pool.open(wait=False)
    try:
        with pytest.raises(Exception):  # noqa: B017 - pool timeout or connection error, both mean "unreachable"
            await LocalQueue(pool, "verify-order").check()
    finally:
        await pool.close()
