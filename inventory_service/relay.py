"""The outbox relay: sends committed events to the bus and marks them sent (at-least-once, never losing a row).

* Wakes the moment a decision commits in this process (`wake`, called by the repository), and polls every
  `poll_interval_s` anyway: other replicas' events, and rows left by a process that died after its commit.
* A batch is claimed with `FOR UPDATE SKIP LOCKED` (replicas share the work), sent in sequence order, and the
  rows that were sent are marked in the same transaction. A crash before the mark resends them after restart;
  `message_id` = `event_id`, so the bus's duplicate detection drops the repeat (consumers de-duplicate too).
* A failed send marks nothing after it: the row records the attempt and the error, the relay logs and backs off
  (exponentially, bounded) and tries again. Nothing is deleted until it was sent and its retention has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from opentelemetry import propagate, trace

from inventory_service.config import InventoryConfig
from inventory_service.domain.events import message_body
from inventory_service.metrics import OUTBOX_PUBLISH_DELAY, OUTBOX_PUBLISHED, OUTBOX_SEND_FAILURES
from inventory_service.repository import Conn, StockRepository
from valerix_common.bus.messages import MessagePublisher, OutgoingMessage
from valerix_common.bus.publishers import OpenPublisher, open_topic_publisher
from valerix_common.db import Pool

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.inventory.relay")

_CLAIM = (
    "SELECT sequence, event_id, type, order_id, payload, traceparent, tracestate, occurred_at,"
    " extract(epoch FROM clock_timestamp() - occurred_at)::float8 AS age_s"
    " FROM outbox WHERE sent_at IS NULL ORDER BY sequence LIMIT %s FOR UPDATE SKIP LOCKED"
)
_PURGE = (
    "DELETE FROM outbox WHERE sequence = ANY(ARRAY(SELECT sequence FROM outbox"
    " WHERE sent_at < now() - make_interval(days => %s) ORDER BY sequence LIMIT %s))"
)
_PURGE_EVERY_S = 600.0
_PURGE_LIMIT = 1000


class RelayError(Exception):
    """A send failed; the rows from the failed one on stay unsent and are retried."""


class OutboxRelay:
    def __init__(
        self,
        pool: Pool,
        publisher: MessagePublisher,
        *,
        destination: str,
        batch_size: int = 100,
        poll_interval_s: float = 1.0,
        initial_backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
        retention_days: int = 7,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.destination = destination
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.retention_days = retention_days
        self.sent = 0
        self.failures = 0
        self.last_error = ""
        self.failing = False  # the last attempt failed
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_purge = 0.0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self, flush_timeout_s: float = 2.0) -> None:
        """Stops the loop, then tries one last bounded send so a graceful stop leaves little behind."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            await asyncio.wait_for(self.relay_once(), flush_timeout_s)
        except Exception as exc:  # the rows stay in the outbox; the next start sends them
            log.warning("outbox relay: final flush to %s failed (%s); rows wait for a restart", self.destination, exc)

    async def run(self) -> None:
        backoff = self.initial_backoff_s
        while True:
            try:
                relayed = await self.relay_once()
                await self._purge_sometimes()
            except Exception as exc:
                self.failures += 1
                self.failing = True
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning(
                    "outbox relay to %s failed (%s); retrying in %.1fs", self.destination, self.last_error, backoff,
                    exc_info=not isinstance(exc, RelayError),
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = self.initial_backoff_s
            self.failing = False
            if relayed < self.batch_size:  # a full batch: more are probably waiting, go on at once
                await self._wait_for_work()

    async def relay_once(self) -> int:
        """Sends one batch; returns how many were sent. Raises RelayError (after marking what was sent)."""
        failure: Exception | None = None
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_CLAIM, (self.batch_size,))
            rows = await cur.fetchall()
            sent: list[dict[str, Any]] = []
            for row in rows:
                try:
                    await self._send(row)
                except Exception as exc:
                    failure = exc
                    await self._record_failure(conn, row, exc)
                    break
                sent.append(row)
            if sent:
                await conn.execute(
                    "UPDATE outbox SET sent_at = now(), attempts = attempts + 1 WHERE sequence = ANY(%s)",
                    ([row["sequence"] for row in sent],),
                )
        for row in sent:
            OUTBOX_PUBLISHED.add(1, {"event.type": row["type"]})
            OUTBOX_PUBLISH_DELAY.record(row["age_s"], {"event.type": row["type"]})
        self.sent += len(sent)
        if failure is not None:
            raise RelayError(f"sending event {rows[len(sent)]['event_id']} failed: {failure!r}") from failure
        return len(sent)

    def report(self) -> dict[str, Any]:
        """For the health side port: informative only (the events wait safely in the outbox)."""
        return {
            "status": "failing" if self.failing else "ok",
            "destination": self.destination,
            "sent": self.sent,
            "failures": self.failures,
            "error": self.last_error if self.failing else "",
        }

    async def backlog(self) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")
            row = await cur.fetchone()
        return int(row["n"]) if row else 0

    async def _send(self, row: dict[str, Any]) -> None:
        parent = propagate.extract({"traceparent": row["traceparent"], "tracestate": row["tracestate"]})
        with tracer.start_as_current_span(
            f"{self.destination} publish", context=parent, kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.destination.name": self.destination, "messaging.message.id": str(row["event_id"])},
        ):
            properties = {"type": row["type"], "source": "valerix-inventory"}
            if row["order_id"] is not None:
                properties["order_id"] = str(row["order_id"])
            propagate.inject(properties)  # the publish span when tracing is on ...
            properties.setdefault("traceparent", row["traceparent"])  # ... else the decision's own context
            await self.publisher.send(
                OutgoingMessage(
                    message_id=str(row["event_id"]),
                    body=message_body(
                        event_id=row["event_id"], event_type=row["type"], order_id=row["order_id"],
                        occurred_at=row["occurred_at"], payload=row["payload"],
                        traceparent=row["traceparent"], tracestate=row["tracestate"],
                    ),
                    application_properties={k: v for k, v in properties.items() if v},
                )
            )

    async def _record_failure(self, conn: Conn, row: dict[str, Any], exc: Exception) -> None:
        OUTBOX_SEND_FAILURES.add(1, {"event.type": row["type"]})
        await conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE sequence = %s",
            (f"{type(exc).__name__}: {exc}"[:500], row["sequence"]),
        )

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):  # the poll fallback
            await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        self._wake.clear()  # before the next claim: a commit after this point wakes the wait after it

    async def _purge_sometimes(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_purge < _PURGE_EVERY_S:
            return
        self._last_purge = now
        async with self.pool.connection() as conn:
            cur = await conn.execute(_PURGE, (self.retention_days, _PURGE_LIMIT))
        if cur.rowcount:
            log.info("outbox: purged %d events sent more than %d days ago", cur.rowcount, self.retention_days)


async def start_relay(config: InventoryConfig, repository: StockRepository) -> tuple[OutboxRelay, OpenPublisher] | None:
    """Starts the relay for the configured bus and hooks it to the repository's commits; None without a bus."""
    opened = await open_topic_publisher(config.bus, config.events_topic)
    if opened is None:
        log.warning("no bus configured: reservation events stay in the outbox until one is (see README)")
        return None
    relay = OutboxRelay(
        repository.pool, opened.publisher, destination=config.events_topic,
        batch_size=config.outbox_batch_size, poll_interval_s=config.outbox_poll_interval_s,
    )
    repository.on_events = relay.wake
    relay.start()
    log.info("outbox relay publishing to %s on %s", config.events_topic, opened.kind)
    return relay, opened
