"""LISTEN/NOTIFY wake-ups for local-bus receivers: one listening connection per pool, shared by every queue.

Every enqueue notifies channel `localbus` with the queue name as payload (delivered at commit). A receiver takes a
`ticket` (the queue's wake-up count) before it looks for messages and then `wait`s for a count above it, so a
notification that lands between "found nothing" and "start waiting" is not lost. Waits are always bounded: the
caller polls again when one times out, so a dropped listening connection degrades latency, never correctness.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import PoolClosed

from valerix_common.db import Pool

log = logging.getLogger(__name__)

CHANNEL = "localbus"
_LISTEN_READY_TIMEOUT_S = 2.0  # how long a first receiver waits for LISTEN before it just polls
_NOTIFIES_TIMEOUT_S = 1.0  # the listener looks up this often to notice a stop or a closed pool
_MAX_BACKOFF_S = 5.0


class BusNotifier:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._counts: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.received = 0  # notifications seen: for tests and stats

    async def ensure_listening(self) -> None:
        """Starts the listener once; waits (bounded) for LISTEN so the first wait can be woken."""
        if self._task is not None and not self._task.done():
            return  # running (listening, or reconnecting: meanwhile receivers poll instead of waiting here)
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="localbus-listener")
        if not self._listening.is_set():
            try:
                await asyncio.wait_for(self._listening.wait(), _LISTEN_READY_TIMEOUT_S)
            except TimeoutError:
                log.warning("local bus: LISTEN not ready after %.1fs; receivers poll", _LISTEN_READY_TIMEOUT_S)

    def ticket(self, queue_name: str) -> int:
        return self._counts.get(queue_name, 0)

    async def wait(self, queue_name: str, ticket: int, timeout_s: float) -> bool:
        """True when `queue_name` was notified after `ticket` was taken; False when `timeout_s` passed first."""
        if self._counts.get(queue_name, 0) != ticket:
            return True
        event = self._events.setdefault(queue_name, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), max(0.0, timeout_s))
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._listening.clear()

    def _wake(self, queue_name: str) -> None:
        self._counts[queue_name] = self._counts.get(queue_name, 0) + 1
        event = self._events.pop(queue_name, None)
        if event is not None:
            event.set()

    def _wake_all(self) -> None:
        # after a (re)connect notifications may have been missed: let every waiter look again
        for name in list(self._counts.keys() | self._events.keys()):
            self._wake(name)

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping and not self._pool.closed:
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._wake_all()
                    backoff = 0.1
                    await self._listen(conn)
                    await conn.execute(f"UNLISTEN {CHANNEL}")
            except PoolClosed:
                break
            except Exception as exc:
                self._listening.clear()
                log.warning("local bus listener lost (%s); reconnecting in %.1fs", exc, backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
        self._listening.clear()

    async def _listen(self, conn: AsyncConnection[Any]) -> None:
        while not self._stopping and not self._pool.closed:
            async for notification in conn.notifies(timeout=_NOTIFIES_TIMEOUT_S):
                self.received += 1
                self._wake(notification.payload)


_notifiers: weakref.WeakKeyDictionary[Pool, BusNotifier] = weakref.WeakKeyDictionary()


def notifier_for(pool: Pool) -> BusNotifier:
    """The pool's shared notifier (created on first use; its listener holds one of the pool's connections)."""
    notifier = _notifiers.get(pool)
    if notifier is None:
        notifier = _notifiers[pool] = BusNotifier(pool)
    return notifier


async def stop_notifier(pool: Pool) -> None:
    """Stops the pool's listener and gives its connection back; call before closing the pool."""
    notifier = _notifiers.pop(pool, None)
    if notifier is not None:
        await notifier.stop()
