"""The outbox relay: sends committed events to the bus and marks them sent (at-least-once, never losing a row).

* Wakes the moment a decision commits in this process (`wake`, called by the repository), and polls every
  `poll_interval_s` anyway: other replicas' events, and rows left by a process that died after its commit.
  Under load, claims are at least `coalesce_s` apart (50 ms): the decisions committed meanwhile share one batch,
  so the relay's round trips, its bus commit and the consumers' calls are paid per batch, not per order (10 ms
  left the inventory ~20 % more CPU per order; 100 ms saved nothing more: docs/benchmarks.md). After a quiet spell
  the first event leaves at once.
* A batch is claimed with `FOR UPDATE SKIP LOCKED` (replicas share the work), sent as one bus batch in sequence
  order (one commit on the local bus, one batch on Service Bus), and marked sent in the claiming transaction. A
  crash before the mark resends it after restart; `message_id` = `event_id`, so the bus's duplicate detection
  drops the repeats (consumers de-duplicate by event id too).
* A failed send marks nothing: the rows record the attempt and the error, the relay logs and backs off
  (exponentially, bounded) and tries again. Nothing is deleted until it was sent and its retention has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from opentelemetry import propagate, trace

from inventory_service.config import InventoryConfig
from inventory_service.domain.events import SOURCE, message_body
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
        coalesce_s: float = 0.05,
        initial_backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
        retention_days: int = 7,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.destination = destination
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.coalesce_s = coalesce_s
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
        self._last_claim = float("-inf")

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
        """Sends one batch; returns how many were sent. Raises RelayError (after recording the failure)."""
        failure: Exception | None = None
        self._last_claim = asyncio.get_running_loop().time()
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_CLAIM, (self.batch_size,))
            rows = await cur.fetchall()
            if not rows:
                return 0
            try:
                await self._send(rows)
            except Exception as exc:  # the whole batch stays unsent (and is resent: duplicates are dropped)
                failure = exc
                await self._record_failure(conn, rows, exc)
            else:
                await conn.execute(
                    "UPDATE outbox SET sent_at = now(), attempts = attempts + 1 WHERE sequence = ANY(%s)",
                    ([row["sequence"] for row in rows],),
                )
        if failure is not None:
            first = rows[0]["event_id"]
            raise RelayError(f"sending {len(rows)} event(s) from {first} failed: {failure!r}") from failure
        for row in rows:
            OUTBOX_PUBLISHED.add(1, {"event.type": row["type"]})
            OUTBOX_PUBLISH_DELAY.record(row["age_s"], {"event.type": row["type"]})
        self.sent += len(rows)
        return len(rows)

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

    async def _send(self, rows: list[dict[str, Any]]) -> None:
        with tracer.start_as_current_span(
            f"{self.destination} publish", kind=trace.SpanKind.PRODUCER,
            links=[trace.Link(ctx) for ctx in map(_span_context, rows) if ctx.is_valid],
            attributes={"messaging.destination.name": self.destination, "messaging.batch.message_count": len(rows)},
        ):
            await self.publisher.send_batch([_message(row) for row in rows])

    async def _record_failure(self, conn: Conn, rows: list[dict[str, Any]], exc: Exception) -> None:
        OUTBOX_SEND_FAILURES.add(len(rows))
        await conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE sequence = ANY(%s)",
            (f"{type(exc).__name__}: {exc}"[:500], [row["sequence"] for row in rows]),
        )

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):  # the poll fallback
            await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        gap = self.coalesce_s - (asyncio.get_running_loop().time() - self._last_claim)
        if gap > 0:  # busy: let the commits of the next few milliseconds join this batch
            await asyncio.sleep(gap)
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


def _span_context(row: dict[str, Any]) -> trace.SpanContext:
    carrier = {"traceparent": row["traceparent"], "tracestate": row["tracestate"]}
    return trace.get_current_span(propagate.extract(carrier)).get_span_context()


def _message(row: dict[str, Any]) -> OutgoingMessage:
    """The bus message of an outbox row; it carries the decision's own trace context, so a consumer's span
    continues the trace of the call that decided (the publish span links to it)."""
    properties = {"type": row["type"], "source": SOURCE, "traceparent": row["traceparent"],
                  "tracestate": row["tracestate"], "order_id": str(row["order_id"] or "")}
    return OutgoingMessage(
        message_id=str(row["event_id"]),
        body=message_body(
            event_id=row["event_id"], event_type=row["type"], order_id=row["order_id"],
            occurred_at=row["occurred_at"], payload=row["payload"],
            traceparent=row["traceparent"], tracestate=row["tracestate"],
        ),
        application_properties={k: v for k, v in properties.items() if v},
    )


async def start_relay(config: InventoryConfig, repository: StockRepository) -> tuple[OutboxRelay, OpenPublisher] | None:
    """Starts the relay for the configured bus and hooks it to the repository's commits; None without a bus."""
    opened = await open_topic_publisher(config.bus, config.events_topic)
    if opened is None:
        log.warning("no bus configured: reservation events stay in the outbox until one is (see README)")
        return None
    relay = OutboxRelay(
        repository.pool, opened.publisher, destination=config.events_topic,
        batch_size=config.outbox_batch_size, poll_interval_s=config.outbox_poll_interval_s,
        coalesce_s=config.outbox_coalesce_s,
    )
    repository.on_events = relay.wake
    relay.start()
    log.info("outbox relay publishing to %s on %s", config.events_topic, opened.kind)
    return relay, opened
