"""Topics of the local bus: a send is copied, in one statement, into the queue of every subscription.

Semantics follow Service Bus topics: duplicate detection is per topic (a repeated `message_id` within the window is
dropped for every subscription); a message sent while a topic has no subscription is accepted and dropped; each
subscription is a queue (`subscription_queue`) with the usual peek-lock, delivery count and dead-letter store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from valerix_common.bus.messages import Sendable
from valerix_common.db import Pool
from valerix_common.local_bus.queue import LocalQueue, batch_params, enqueue_many_sql

log = logging.getLogger(__name__)

_SUBSCRIBERS = "SELECT queue_name FROM localbus.subscriptions WHERE topic_name = %(topic)s"
_PUBLISH_MANY_DEDUP = enqueue_many_sql(True, _SUBSCRIBERS)
_PUBLISH_MANY_PLAIN = enqueue_many_sql(False, _SUBSCRIBERS)


def subscription_path(topic_name: str, subscription_name: str) -> str:
    return f"{topic_name}/subscriptions/{subscription_name}"


def subscription_queue(pool: Pool, topic_name: str, subscription_name: str, **settings: Any) -> LocalQueue:
    """The receiver side of one subscription (settings as for `LocalQueue`: lock duration, max delivery count)."""
    settings.setdefault("duplicate_detection_window_s", 0)  # the topic de-duplicates, before the copy
    return LocalQueue(pool, subscription_path(topic_name, subscription_name), **settings)


class LocalTopic:
    """Sender side of a topic; satisfies `MessageSender` / `MessagePublisher`. The pool belongs to the caller."""

    def __init__(self, pool: Pool, topic_name: str, *, duplicate_detection_window_s: float = 600.0) -> None:
        if not topic_name or "/" in topic_name:
            raise ValueError("topic_name must be non-empty and without '/'")
        self._pool = pool
        self.topic_name = topic_name
        self.duplicate_detection_window_s = float(duplicate_detection_window_s)  # 0 or less: off

    async def send(self, message: Sendable) -> None:
        """Durably copies the message to every subscription (committed on return)."""
        await self.publish(message)

    async def publish(self, message: Sendable) -> int:
        """As `send`; returns how many subscriptions got a copy (0 for a duplicate or with no subscription)."""
        row = await self._publish([message])
        if row["fresh"] == 0:
            log.info("local topic %s: duplicate message_id %s dropped", self.topic_name, message.message_id)
            return 0
        if row["copies"] == 0:
            log.warning("local topic %s: no subscription, message %s dropped", self.topic_name, message.message_id)
        return int(row["copies"])

    async def send_batch(self, messages: Sequence[Sendable]) -> None:
        """One statement for all of them, in order: one commit however many messages (the relay's hot path)."""
        if not messages:
            return
        row = await self._publish(messages)
        if row["fresh"] < len(messages):
            log.info("local topic %s: %d duplicate message id(s) of a batch of %d dropped", self.topic_name,
                     len(messages) - row["fresh"], len(messages))

    async def _publish(self, messages: Sequence[Sendable]) -> dict[str, Any]:
        dedup = self.duplicate_detection_window_s > 0
        params = {"topic": self.topic_name,
                  **batch_params(messages, self.topic_name, self.duplicate_detection_window_s)}
        async with self._pool.connection() as conn:
            cur = await conn.execute(_PUBLISH_MANY_DEDUP if dedup else _PUBLISH_MANY_PLAIN, params)
            row = await cur.fetchone()
        assert row is not None  # the final SELECT always yields one row
        return dict(row)

    async def create_subscription(self, subscription_name: str) -> None:
        """Idempotent; messages sent before a subscription exists are not copied to it (as in Service Bus)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO localbus.subscriptions (topic_name, subscription_name) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (self.topic_name, subscription_name),
            )

    async def subscriptions(self) -> list[str]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT subscription_name FROM localbus.subscriptions WHERE topic_name = %s"
                " ORDER BY subscription_name",
                (self.topic_name,),
            )
            return [row["subscription_name"] for row in await cur.fetchall()]

    async def check(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("SELECT 1 FROM localbus.subscriptions LIMIT 1")

    async def close(self) -> None:
        """Nothing to release: the pool is owned (and closed) by whoever passed it in."""
