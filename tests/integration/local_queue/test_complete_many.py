"""Settling several messages of a queue in one statement, and the host pump's batcher on top of it, against the
real local bus: each message learns its own fate; lost or unknown locks are not completed; counters stay exact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from devstack.functions_host.completions import CompletionBatcher
from order_functions.infrastructure.local_queue import LocalQueue
from order_functions.infrastructure.messaging import OutgoingMessage, ReceivedMessage
from tests.support.bus import new_bus_db
from valerix_common.db import Pool, make_pool
from valerix_common.embedded_pg import EmbeddedPostgres


def queue(pool: Pool) -> LocalQueue:
    return LocalQueue(pool, f"q-{uuid.uuid4().hex[:10]}")


async def received(q: LocalQueue, count: int) -> list[ReceivedMessage]:
    for n in range(count):
        await q.send(OutgoingMessage(message_id=f"m{n}", body=b"{}"))
    got = await q.receive(count)
    assert len(got) == count
    return got


async def test_complete_many_settles_the_held_locks_and_only_those(bus_pool: Pool) -> None:
    q = queue(bus_pool)
    first, second, third = await received(q, 3)
    await q.complete(third.lock_token)  # its lock is gone now
    tokens = [first.lock_token, second.lock_token, third.lock_token, str(uuid.uuid4()), "not-a-uuid"]
    assert await q.complete_many(tokens) == {first.lock_token, second.lock_token}
    assert await q.complete_many([first.lock_token]) == set()  # settled already
    assert await q.complete_many([]) == set()
    stats = await q.stats()
    assert stats["completed"] == 3 and stats["active"] == 0 and stats["redeliveries"] == 0


class CountingQueue(LocalQueue):
    """The real queue, counting how many statements settled the messages."""

    batches: list[int]

    async def complete_many(self, lock_tokens: Sequence[str]) -> set[str]:
        self.batches.append(len(lock_tokens))
        return await super().complete_many(lock_tokens)


async def test_concurrent_completions_share_statements_and_each_learns_its_fate(bus_pool: Pool) -> None:
    q = CountingQueue(bus_pool, f"q-{uuid.uuid4().hex[:10]}")
    q.batches = []
    messages = await received(q, 10)
    lost = messages[0]
    await q.complete(lost.lock_token)
    batcher = CompletionBatcher(q)
    outcomes = await asyncio.gather(*(batcher.complete(m.lock_token) for m in messages))
    assert outcomes == [False] + [True] * 9
    assert sum(q.batches) == 10 and len(q.batches) < 10
    assert (await q.stats())["completed"] == 10
    assert await batcher.complete(str(uuid.uuid4())) is False  # a lone completion goes out at once


async def test_a_failed_batch_fails_every_completion_in_it(pg_server: EmbeddedPostgres | None) -> None:
    pool = make_pool(new_bus_db(pg_server), name="closed-bus", min_size=1, max_size=1, mode="password")
    batcher = CompletionBatcher(LocalQueue(pool, "q-closed"))  # the pool was never opened: every use fails
    outcomes = await asyncio.gather(*(batcher.complete(str(uuid.uuid4())) for _ in range(3)), return_exceptions=True)
    assert len(outcomes) == 3 and all(isinstance(o, Exception) for o in outcomes)
    with pytest.raises(Exception):  # noqa: B017 - whatever the pool raises reaches the caller
        await batcher.complete(str(uuid.uuid4()))
