"""A durable stand-in for the Azure Service Bus queue, kept in PostgreSQL (used when no Service Bus is configured).

It follows the Service Bus semantics the order flow relies on:

* **Duplicate detection** — a message whose `message_id` was already enqueued on the same queue within the window
  is accepted and dropped (also when the first copy was since completed or dead-lettered; the id history is kept).
* **Scheduled messages** — not receivable before `scheduled_enqueue_time_utc` (naive datetimes are taken as UTC).
* **Peek-lock** — `receive` locks messages for `lock_duration_s` with a fresh random lock token and counts the
  delivery (1 on the first delivery). Concurrent receivers, in any number of processes, never get the same message
  (`FOR UPDATE SKIP LOCKED`). A message whose lock expired is delivered again with a higher delivery count.
* **Settlement** — `complete`, `abandon` (redelivered at once), `dead_letter`, `renew_lock`; each raises
  `MessageLockLost` when the token is unknown or its lock expired, as the Service Bus SDK does.
* **Max delivery count** — at most `max_delivery_count` deliveries: a message that would be delivered once more, or is
  abandoned on its last delivery, moves to the dead-letter store with reason `MaxDeliveryCountExceeded`.

* **Low latency** — every enqueue (and every abandon) sends `NOTIFY localbus, '<queue>'` in its own statement;
  `receive_wait` returns as soon as a message arrives, and polls anyway (bounded waits), so a lost notification or a
  lock that expired on its own only costs one poll interval.

All times (visibility, lock expiry, duplicate window) come from the database clock, so several processes agree.
Tables live in the `localbus` schema, created by `ensure_schema` with the bus's own `schema_migrations` table.
Topics with subscriptions are in `topics.py`: each subscription is a queue of this kind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from valerix_common.bus.messages import MessageLockLost, ReceivedMessage, Sendable
from valerix_common.db import Pool
from valerix_common.local_bus.notify import CHANNEL, notifier_for
from valerix_common.local_bus.topology import DEFAULT_SUBSCRIPTIONS
from valerix_common.migrations import apply_migrations

log = logging.getLogger(__name__)

SCHEMA = "localbus"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"

_PURGE_EVERY = 32  # sends between two opportunistic purges of expired duplicate-detection records
_PURGE_LIMIT = 500  # rows per purge: always bounded
_MAX_RECEIVE_ROUNDS = 10  # receive retries while messages it picked were dead-lettered instead of delivered


async def ensure_schema(
    pool: Pool, subscriptions: Mapping[str, Iterable[str]] = DEFAULT_SUBSCRIPTIONS
) -> list[int]:
    """Creates/upgrades the `localbus` schema; idempotent and safe for concurrent start-ups. Returns versions applied.

    Then declares the topic subscriptions (as the Bicep does in Azure), so that events published before their
    consumer first starts are kept for it rather than dropped.

    The migration versions are recorded in `localbus.schema_migrations` (not the owning service's
    `public.schema_migrations`): each migration transaction points its own search_path at `localbus`
    (`apply_migrations(schema=...)`), so nothing outlives it, behind PgBouncer too.
    """
    async with pool.connection() as conn:
        applied = await apply_migrations(conn, MIGRATIONS, schema=SCHEMA)
        pairs = [(topic, name) for topic, names in subscriptions.items() for name in names]
        if pairs:
            await conn.execute(
                "INSERT INTO localbus.subscriptions (topic_name, subscription_name)"
                " SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING",
                ([t for t, _ in pairs], [n for _, n in pairs]),
            )
        return applied


# --- SQL ---------------------------------------------------------------------------------------------------------

def enqueue_many_sql(dedup: bool, targets: str) -> str:
    """One message or a batch in one statement, in order, copied into every queue `targets` (a query yielding
    `queue_name`) names: with duplicate detection the first copy of each id in the batch is the candidate and an id
    seen within the window is dropped (as sending them one by one would); without, every message is copied. One
    NOTIFY per queue, delivered at commit (once the copies are receivable). Parameters: `batch_params`."""
    chosen = (
        "firsts AS (SELECT DISTINCT ON (id) id, n FROM input ORDER BY id, n),"
        " fresh AS (INSERT INTO localbus.message_ids (queue_name, message_id, expires_at)"
        "   SELECT %(dedup_key)s, id, clock_timestamp() + make_interval(secs => %(window)s) FROM firsts"
        "   ON CONFLICT (queue_name, message_id) DO UPDATE"
        "   SET first_seen = clock_timestamp(), expires_at = EXCLUDED.expires_at"
        "   WHERE message_ids.expires_at <= clock_timestamp() RETURNING message_id AS id),"
        " chosen AS (SELECT f.id, f.n FROM firsts f JOIN fresh USING (id))"
        if dedup else "chosen AS (SELECT id, n FROM input)"
    )
    return f"""
WITH input AS (
    SELECT * FROM unnest(%(ids)s::text[], %(bodies)s::bytea[], %(props)s::jsonb[], %(cts)s::text[],
                         %(ats)s::timestamptz[]) WITH ORDINALITY AS m(id, body, props, ct, at, n)
),
{chosen},
copies AS (
    INSERT INTO localbus.messages (queue_name, message_id, body, application_properties, content_type, visible_at)
    SELECT t.queue_name, m.id, m.body, m.props, m.ct, greatest(clock_timestamp(), m.at)
    FROM input m JOIN chosen c ON c.n = m.n CROSS JOIN ({targets}) t
    ORDER BY m.n, t.queue_name
    RETURNING queue_name
),
notified AS (SELECT pg_notify('{CHANNEL}', q) FROM (SELECT DISTINCT queue_name AS q FROM copies) d)
SELECT (SELECT count(*) FROM chosen) AS fresh, (SELECT count(*) FROM copies) AS copies,
       (SELECT count(*) FROM notified) AS queues
"""


_QUEUE_TARGET = "SELECT %(q)s::text AS queue_name"
_SEND_DEDUP = enqueue_many_sql(True, _QUEUE_TARGET)
_SEND_PLAIN = enqueue_many_sql(False, _QUEUE_TARGET)


def _message_fields(message: Sendable) -> dict[str, Any]:
    return {
        "id": message.message_id,
        "body": bytes(message.body),
        "props": Jsonb({str(k): str(v) for k, v in message.application_properties.items()}),
        "ct": message.content_type,
        "at": _aware(message.scheduled_enqueue_time_utc),
    }


def batch_params(messages: Sequence[Sendable], dedup_key: str, window_s: float) -> dict[str, Any]:
    """The parameters of `enqueue_many_sql` for these messages, in order."""
    each = [_message_fields(m) for m in messages]
    return {
        "dedup_key": dedup_key, "window": window_s,
        "ids": [p["id"] for p in each], "bodies": [p["body"] for p in each], "props": [p["props"] for p in each],
        "cts": [p["ct"] for p in each], "ats": [p["at"] for p in each],
    }


# Moves the rows of CTE `dead` (deleted from localbus.messages) into the dead-letter store.
_MOVE_DEAD = """
moved AS (
    INSERT INTO localbus.dead_letters (sequence_number, queue_name, message_id, body, application_properties,
                                       content_type, enqueued_at, delivery_count, dead_letter_reason,
                                       dead_letter_description)
    SELECT sequence_number, queue_name, message_id, body, application_properties, content_type, enqueued_at,
           delivery_count, %(reason)s, %(description)s
    FROM dead
    RETURNING sequence_number, message_id, delivery_count
)
"""

_RECEIVE = f"""
WITH picked AS (
    SELECT sequence_number, delivery_count
    FROM localbus.messages
    WHERE queue_name = %(q)s
      AND visible_at <= clock_timestamp()
      AND (locked_until IS NULL OR locked_until <= clock_timestamp())
    ORDER BY sequence_number
    LIMIT %(n)s
    FOR UPDATE SKIP LOCKED
),
dead AS (
    DELETE FROM localbus.messages m USING picked p
    WHERE m.sequence_number = p.sequence_number AND p.delivery_count >= %(max)s
    RETURNING m.*
),
{_MOVE_DEAD},
delivered AS (
    UPDATE localbus.messages m
    SET delivery_count = m.delivery_count + 1,
        lock_token = gen_random_uuid(),
        locked_until = clock_timestamp() + make_interval(secs => %(lock)s)
    FROM picked p
    WHERE m.sequence_number = p.sequence_number AND p.delivery_count < %(max)s
    RETURNING m.*
)
SELECT false AS dead, sequence_number, message_id, body, application_properties, content_type, enqueued_at,
       delivery_count, lock_token, locked_until
FROM delivered
UNION ALL
SELECT true, sequence_number, message_id, NULL, NULL, NULL, NULL, delivery_count, NULL, NULL
FROM moved
"""

_OWNED = "queue_name = %(q)s AND lock_token = %(t)s AND locked_until > clock_timestamp()"

_COMPLETE = f"""
WITH done AS (
    DELETE FROM localbus.messages WHERE {_OWNED}
    RETURNING delivery_count
),
counted AS (
    INSERT INTO localbus.queue_counters (queue_name, completed, completed_redeliveries)
    SELECT %(q)s, 1, greatest(delivery_count - 1, 0) FROM done
    ON CONFLICT (queue_name) DO UPDATE
        SET completed = queue_counters.completed + EXCLUDED.completed,
            completed_redeliveries = queue_counters.completed_redeliveries + EXCLUDED.completed_redeliveries
)
SELECT count(*) AS n FROM done
"""

# Several settlements of one queue at once (the local host's pump batches them): one statement and one commit, and
# the queue's counter row is taken once per batch instead of once per message.
_COMPLETE_MANY = """
WITH done AS (
    DELETE FROM localbus.messages
    WHERE queue_name = %(q)s AND lock_token = ANY(%(tokens)s) AND locked_until > clock_timestamp()
    RETURNING lock_token, delivery_count
),
counted AS (
    INSERT INTO localbus.queue_counters (queue_name, completed, completed_redeliveries)
    SELECT %(q)s, count(*), coalesce(sum(greatest(delivery_count - 1, 0)), 0) FROM done HAVING count(*) > 0
    ON CONFLICT (queue_name) DO UPDATE
        SET completed = queue_counters.completed + EXCLUDED.completed,
            completed_redeliveries = queue_counters.completed_redeliveries + EXCLUDED.completed_redeliveries
)
SELECT lock_token FROM done
"""

_ABANDON = f"""
WITH target AS (
    SELECT sequence_number, delivery_count FROM localbus.messages WHERE {_OWNED} FOR UPDATE
),
dead AS (
    DELETE FROM localbus.messages m USING target t
    WHERE m.sequence_number = t.sequence_number AND t.delivery_count >= %(max)s
    RETURNING m.*
),
{_MOVE_DEAD},
released AS (
    UPDATE localbus.messages m SET lock_token = NULL, locked_until = NULL
    FROM target t
    WHERE m.sequence_number = t.sequence_number AND t.delivery_count < %(max)s
    RETURNING m.sequence_number
),
notified AS (SELECT pg_notify('{CHANNEL}', %(q)s) FROM released)
SELECT (SELECT count(*) FROM moved) AS dead, (SELECT count(*) FROM notified) AS released
"""

_DEAD_LETTER = f"""
WITH dead AS (
    DELETE FROM localbus.messages WHERE {_OWNED}
    RETURNING *
),
{_MOVE_DEAD}
SELECT count(*) AS n FROM moved
"""

_RENEW = f"""
UPDATE localbus.messages SET locked_until = clock_timestamp() + make_interval(secs => %(lock)s)
WHERE {_OWNED}
RETURNING locked_until
"""

_STATS = """
WITH t AS (SELECT clock_timestamp() AS now_ts),
m AS (
    SELECT count(*) FILTER (WHERE visible_at <= t.now_ts) AS active,
           count(*) FILTER (WHERE visible_at > t.now_ts) AS scheduled,
           count(*) FILTER (WHERE locked_until > t.now_ts) AS locked,
           coalesce(sum(greatest(delivery_count - 1, 0)), 0) AS active_redeliveries
    FROM localbus.messages, t
    WHERE queue_name = %(q)s
)
SELECT m.active, m.scheduled, m.locked, m.active_redeliveries,
       (SELECT count(*) FROM localbus.dead_letters WHERE queue_name = %(q)s) AS dead_lettered,
       coalesce(c.completed, 0) AS completed,
       coalesce(c.completed_redeliveries, 0) AS completed_redeliveries
FROM m LEFT JOIN localbus.queue_counters c ON c.queue_name = %(q)s
"""

_DEAD_LETTERS = """
SELECT sequence_number, message_id, dead_letter_reason AS reason, dead_letter_description AS description,
       delivery_count, body, application_properties, enqueued_at, dead_lettered_at
FROM localbus.dead_letters
WHERE queue_name = %(q)s
ORDER BY sequence_number
LIMIT %(limit)s
"""

_PURGE = """
DELETE FROM localbus.message_ids
WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM localbus.message_ids
        WHERE queue_name = %(q)s AND expires_at <= clock_timestamp()
        LIMIT %(limit)s))
  AND expires_at <= clock_timestamp()
"""


class LocalQueue:
    """One queue of the local bus; satisfies `MessageSender` and offers the receiver side of peek-lock.

    `pool` connections must use `autocommit=True` and `row_factory=dict_row` (as `valerix_common.db.make_pool`
    makes them). The pool belongs to the caller: `close()` leaves it open, its owner closes it.
    """

    def __init__(
        self,
        pool: Pool,
        queue_name: str,
        *,
        lock_duration_s: float = 30.0,
        max_delivery_count: int = 10,
        duplicate_detection_window_s: float = 600.0,
    ) -> None:
        if not queue_name:
            raise ValueError("queue_name must not be empty")
        if lock_duration_s <= 0:
            raise ValueError("lock_duration_s must be positive")
        if max_delivery_count < 1:
            raise ValueError("max_delivery_count must be at least 1")
        self._pool = pool
        self.queue_name = queue_name
        self.lock_duration_s = float(lock_duration_s)
        self.max_delivery_count = int(max_delivery_count)
        # 0 (or less) turns duplicate detection off.
        self.duplicate_detection_window_s = float(duplicate_detection_window_s)
        self._sends = 0

    ensure_schema = staticmethod(ensure_schema)

    # --- sender ----------------------------------------------------------------------------------------------
    async def send(self, message: Sendable) -> None:
        """Durably enqueues (committed on return); a duplicate `message_id` within the window is dropped silently."""
        params = {"q": self.queue_name, **batch_params([message], self.queue_name, self.duplicate_detection_window_s)}
        sql = _SEND_DEDUP if self.duplicate_detection_window_s > 0 else _SEND_PLAIN
        async with self._pool.connection() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
        if row is None or row["fresh"] == 0:
            log.info("local queue %s: duplicate message_id %s dropped", self.queue_name, message.message_id)
        else:
            log.debug("local queue %s: enqueued %s", self.queue_name, message.message_id)
        self._sends += 1
        if self.duplicate_detection_window_s > 0 and self._sends % _PURGE_EVERY == 1:
            await self.purge_expired_duplicates()

    async def check(self) -> None:
        """Raises when the database (or the bus schema) cannot be reached."""
        async with self._pool.connection() as conn:
            await conn.execute("SELECT 1 FROM localbus.messages LIMIT 1")

    async def close(self) -> None:
        """Nothing to release: the pool is owned (and closed) by whoever passed it in."""

    # --- receiver --------------------------------------------------------------------------------------------
    async def receive(self, max_messages: int = 1) -> list[ReceivedMessage]:
        """Peek-locks up to `max_messages` available messages in sequence order; [] when none is available."""
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        received: list[ReceivedMessage] = []
        for _ in range(_MAX_RECEIVE_ROUNDS):
            wanted = max_messages - len(received)
            params = {
                "q": self.queue_name,
                "n": wanted,
                "max": self.max_delivery_count,
                "lock": self.lock_duration_s,
                "reason": MAX_DELIVERY_COUNT_EXCEEDED,
                "description": f"delivered {self.max_delivery_count} times without being completed",
            }
            async with self._pool.connection() as conn:
                cur = await conn.execute(_RECEIVE, params)
                rows = await cur.fetchall()
            dead = [r for r in rows if r["dead"]]
            for r in dead:
                log.warning(
                    "local queue %s: message %s dead-lettered after %s deliveries (%s)",
                    self.queue_name,
                    r["message_id"],
                    r["delivery_count"],
                    MAX_DELIVERY_COUNT_EXCEEDED,
                )
            received.extend(_received(r) for r in rows if not r["dead"])
            # Only when picked messages went to the dead-letter store instead may more be waiting behind them.
            if not dead or len(received) >= max_messages:
                break
        received.sort(key=lambda m: m.sequence_number)
        return received

    async def receive_wait(
        self, max_messages: int = 1, *, max_wait_s: float = 5.0, poll_interval_s: float = 1.0
    ) -> list[ReceivedMessage]:
        """Like the SDK's `receive_messages(max_wait_time=)`: returns as soon as something is received (woken by
        NOTIFY), or [] once `max_wait_s` has passed. Polls every `poll_interval_s` anyway: notifications are a
        latency optimisation, never the only path (a lost one, or an expired lock, costs one interval)."""
        if max_wait_s < 0 or poll_interval_s <= 0:
            raise ValueError("max_wait_s must be >= 0 and poll_interval_s > 0")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_s
        notifier = notifier_for(self._pool)
        await notifier.ensure_listening()
        while True:
            ticket = notifier.ticket(self.queue_name)  # taken before receiving: a NOTIFY in between is not missed
            received = await self.receive(max_messages)
            remaining = deadline - loop.time()
            if received or remaining <= 0:
                return received
            await notifier.wait(self.queue_name, ticket, min(remaining, poll_interval_s))

    async def complete(self, lock_token: str) -> None:
        """Settles the message for good; its id stays in the duplicate-detection history for the window."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_COMPLETE, self._owned(lock_token))
            row = await cur.fetchone()
        if row is None or row["n"] == 0:
            raise MessageLockLost(f"lock {lock_token} on queue {self.queue_name} is lost or unknown")

    async def complete_many(self, lock_tokens: Sequence[str]) -> set[str]:
        """`complete` for several messages in one statement; returns the tokens it completed (the others' locks are
        lost or unknown, as `MessageLockLost` would have said for each)."""
        tokens = {str(t): _token(t) for t in lock_tokens}
        valid = [t for t in tokens.values() if t is not None]
        if not valid:
            return set()
        async with self._pool.connection() as conn:
            cur = await conn.execute(_COMPLETE_MANY, {"q": self.queue_name, "tokens": valid})
            done = {row["lock_token"] for row in await cur.fetchall()}
        return {text for text, token in tokens.items() if token in done}

    async def abandon(self, lock_token: str) -> None:
        """Releases the lock now (redelivered at once); dead-letters it if this was its last allowed delivery."""
        params = {
            **self._owned(lock_token),
            "max": self.max_delivery_count,
            "reason": MAX_DELIVERY_COUNT_EXCEEDED,
            "description": f"abandoned on delivery {self.max_delivery_count} of {self.max_delivery_count}",
        }
        async with self._pool.connection() as conn:
            cur = await conn.execute(_ABANDON, params)
            row = await cur.fetchone()
        if row is None or (row["dead"] == 0 and row["released"] == 0):
            raise MessageLockLost(f"lock {lock_token} on queue {self.queue_name} is lost or unknown")
        if row["dead"]:
            log.warning(
                "local queue %s: abandoned message dead-lettered (%s)", self.queue_name, MAX_DELIVERY_COUNT_EXCEEDED
            )

    async def dead_letter(self, lock_token: str, reason: str, description: str = "") -> None:
        """Moves the locked message to the dead-letter store with the given reason and description."""
        params = {**self._owned(lock_token), "reason": reason, "description": description}
        async with self._pool.connection() as conn:
            cur = await conn.execute(_DEAD_LETTER, params)
            row = await cur.fetchone()
        if row is None or row["n"] == 0:
            raise MessageLockLost(f"lock {lock_token} on queue {self.queue_name} is lost or unknown")

    async def renew_lock(self, lock_token: str) -> datetime:
        """Extends the lock by the lock duration from now; returns the new expiry (database clock)."""
        params = {**self._owned(lock_token), "lock": self.lock_duration_s}
        async with self._pool.connection() as conn:
            cur = await conn.execute(_RENEW, params)
            row = await cur.fetchone()
        if row is None:
            raise MessageLockLost(f"lock {lock_token} on queue {self.queue_name} is lost or unknown")
        locked_until: datetime = row["locked_until"]
        return locked_until

    # --- introspection ---------------------------------------------------------------------------------------
    async def stats(self) -> dict[str, int]:
        """Counts for tests, the chaos report and dashboards.

        `active`: enqueued and due (not scheduled for later), locked or not — Service Bus's ActiveMessageCount;
        `available`: active and not locked (receivable now); `locked`: under a live lock; `scheduled`: not yet due;
        `dead_lettered`; `completed`; `redeliveries`: Σ(delivery_count − 1) over completed and unsettled messages.
        """
        async with self._pool.connection() as conn:
            cur = await conn.execute(_STATS, {"q": self.queue_name})
            row = await cur.fetchone()
        assert row is not None  # an aggregate always returns a row
        return {
            "active": int(row["active"]),
            "available": int(row["active"]) - int(row["locked"]),
            "scheduled": int(row["scheduled"]),
            "locked": int(row["locked"]),
            "dead_lettered": int(row["dead_lettered"]),
            "completed": int(row["completed"]),
            "redeliveries": int(row["active_redeliveries"]) + int(row["completed_redeliveries"]),
        }

    async def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The dead-letter store, oldest first: message_id, reason, description, delivery_count, body (str), …"""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_DEAD_LETTERS, {"q": self.queue_name, "limit": max(0, limit)})
            rows = await cur.fetchall()
        return [
            {
                "message_id": r["message_id"],
                "reason": r["reason"],
                "description": r["description"],
                "delivery_count": int(r["delivery_count"]),
                "body": bytes(r["body"]).decode("utf-8", errors="replace"),
                "application_properties": dict(r["application_properties"] or {}),
                "sequence_number": int(r["sequence_number"]),
                "enqueued_time_utc": r["enqueued_at"],
                "dead_lettered_time_utc": r["dead_lettered_at"],
            }
            for r in rows
        ]

    async def purge_expired_duplicates(self, limit: int = _PURGE_LIMIT) -> int:
        """Forgets at most `limit` message ids whose duplicate-detection window has passed; returns how many."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(_PURGE, {"q": self.queue_name, "limit": max(0, limit)})
            return cur.rowcount

    # --- helpers ---------------------------------------------------------------------------------------------
    def _owned(self, lock_token: str) -> dict[str, Any]:
        try:
            token = uuid.UUID(str(lock_token))
        except ValueError:
            raise MessageLockLost(f"lock {lock_token!r} on queue {self.queue_name} is unknown") from None
        return {"q": self.queue_name, "t": token}


def _token(lock_token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(lock_token))
    except ValueError:
        return None


def _aware(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def _received(row: dict[str, Any]) -> ReceivedMessage:
    return ReceivedMessage(
        message_id=row["message_id"],
        body=bytes(row["body"]),
        application_properties={str(k): str(v) for k, v in (row["application_properties"] or {}).items()},
        content_type=row["content_type"] or "",
        delivery_count=int(row["delivery_count"]),
        sequence_number=int(row["sequence_number"]),
        enqueued_time_utc=row["enqueued_at"],
        locked_until_utc=row["locked_until"],
        lock_token=str(row["lock_token"]),
    )
