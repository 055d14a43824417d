"""The message pump of a Service Bus trigger, fed from the local PostgreSQL queue: receive in peek-lock mode, run the
function with its lock renewed, complete on success, abandon on an exception (redelivery, then dead-letter).

A trigger with cardinality "many" gets what one receive returned (up to maxMessageBatchSize) as one list, one call
at a time, as the extension's batch listener does: the batch is completed together on success and abandoned
together when the function raises.

`QueuePump.deliver_once` runs one batch in turn; tests use it to drive messages through this same pump."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.functions.servicebus import ServiceBusMessage

from devstack.functions_host.completions import CompletionBatcher
from devstack.functions_host.invocation import invoke, log_failed, log_succeeded
from devstack.functions_host.metadata import QueueFunction

if TYPE_CHECKING:
    from order_functions.infrastructure.local_queue import LocalQueue
    from order_functions.infrastructure.messaging import ReceivedMessage
    from valerix_common.db import Pool

RECEIVE_WAIT_S = 1.0  # one receive's longest wait for a message (a NOTIFY ends it at once)

log = logging.getLogger("devstack.functions_host")

Track = Callable[["asyncio.Task[Any]"], None]


class Outcome(enum.Enum):
    COMPLETED = "completed"
    ABANDONED = "abandoned"  # the function raised: delivered again (or dead-lettered on its last delivery)
    LOCK_LOST = "lock-lost"  # settled too late: it will be, or was, delivered again
    UNSETTLED = "unsettled"  # settling failed: it returns when its lock expires


@dataclass(frozen=True)
class Delivery:
    message_id: str
    outcome: Outcome
    error: Exception | None = None  # the function's exception when it failed


class QueuePump:
    def __init__(
        self,
        fn: QueueFunction,
        queue: LocalQueue,
        *,
        max_concurrent_calls: int = 16,
        max_auto_lock_renewal_s: float = 300.0,
        max_message_batch_size: int = 1000,
        poll_interval_s: float = 0.1,
        track: Track | None = None,
    ) -> None:
        self.fn = fn
        self.queue = queue
        self.max_concurrent_calls = max_concurrent_calls
        self.max_auto_lock_renewal_s = max_auto_lock_renewal_s
        self.max_message_batch_size = max_message_batch_size
        self.poll_interval_s = poll_interval_s
        self.track = track or (lambda _task: None)  # the host counts in-flight handlers to drain them on stop
        self._completions = CompletionBatcher(queue)  # concurrent handlers' completions share one statement

    async def run(self, stopping: asyncio.Event) -> None:
        """One receiver; at most maxConcurrentCalls handlers at a time (the host's message pump)."""
        if self.fn.many:
            await self._run_batches(stopping)
            return
        slots = asyncio.Semaphore(self.max_concurrent_calls)
        backoff = 0.0
        while not stopping.is_set():
            free = await self._acquire(slots)
            try:
                messages, backoff = await self._receive(free, backoff)
            except asyncio.CancelledError:
                _release(slots, free)
                raise
            _release(slots, free - len(messages))
            for message in messages:
                task = asyncio.create_task(self.handle(message), name=f"msg:{message.message_id}")
                self.track(task)
                task.add_done_callback(lambda _t: slots.release())

    async def _run_batches(self, stopping: asyncio.Event) -> None:
        backoff = 0.0
        while not stopping.is_set():
            messages, backoff = await self._receive(self.max_message_batch_size, backoff)
            if messages:
                task = asyncio.create_task(self.handle_batch(messages), name=f"batch:{self.fn.name}")
                self.track(task)
                await asyncio.wait({task})  # stopping cancels this wait, not the batch: the host drains it

    async def _receive(self, max_messages: int, backoff: float) -> tuple[list[ReceivedMessage], float]:
        """One receive and the backoff that follows it: wakes on the bus's NOTIFY the moment a message commits,
        polling anyway (bounded waits); a failed receive is logged and waited out (growing, bounded) and gives no
        messages."""
        try:
            messages = await self.queue.receive_wait(
                max_messages=max_messages, max_wait_s=RECEIVE_WAIT_S, poll_interval_s=self.poll_interval_s
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            backoff = min(2.0, max(0.1, backoff * 2))
            log.warning("%s: receiving from queue %r failed (%s); retrying in %.1f s",
                        self.fn.name, self.fn.queue_name, exc, backoff)
            await asyncio.sleep(backoff)
            return [], backoff
        return messages, 0.0

    async def _acquire(self, slots: asyncio.Semaphore) -> int:
        """Waits for one free slot, then takes every other free one: how many messages to ask for."""
        await slots.acquire()
        free = 1
        while free < self.max_concurrent_calls and not slots.locked():
            await slots.acquire()
            free += 1
        return free

    async def deliver_once(self, max_messages: int = 20) -> list[Delivery]:
        """Receives one batch and runs it exactly as `run` would: message by message, or as one call (many)."""
        received = await self.queue.receive(max_messages=max_messages)
        if self.fn.many:
            return await self.handle_batch(received) if received else []
        return [await self.handle(message) for message in received]

    async def handle_batch(self, messages: list[ReceivedMessage]) -> list[Delivery]:
        renewal = asyncio.create_task(self._renew_locks(messages))
        invocation_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            await invoke(self.fn.user_function, {self.fn.arg_name: [to_service_bus_message(m) for m in messages]})
        except asyncio.CancelledError:
            renewal.cancel()
            await asyncio.shield(asyncio.gather(*(self._abandon(m) for m in messages)))
            raise
        except Exception as exc:
            renewal.cancel()
            ids = ", ".join(f"{m.message_id} (delivery {m.delivery_count})" for m in messages)
            log_failed(self.fn.name, invocation_id, started, exc,
                       f" batch of {len(messages)}: {ids}; abandoning the batch")
            return [Delivery(m.message_id, await self._abandon(m), exc) for m in messages]
        renewal.cancel()
        try:
            done = await self.queue.complete_many([m.lock_token for m in messages])
        except Exception:
            log.exception("%s: completing a batch of %d failed; its messages return when their locks expire",
                          self.fn.name, len(messages))
            return [Delivery(m.message_id, Outcome.UNSETTLED) for m in messages]
        deliveries = []
        for m in messages:
            if m.lock_token in done:
                deliveries.append(Delivery(m.message_id, Outcome.COMPLETED))
                continue
            log.warning("%s: lock lost before completing message %s (delivery %d); it will be delivered again",
                        self.fn.name, m.message_id, m.delivery_count)
            deliveries.append(Delivery(m.message_id, Outcome.LOCK_LOST))
        if log.isEnabledFor(logging.DEBUG):
            log_succeeded(self.fn.name, invocation_id, started, f" batch of {len(messages)}", logging.DEBUG)
        return deliveries

    async def handle(self, message: ReceivedMessage) -> Delivery:
        renewal = asyncio.create_task(self._renew_locks([message]))
        invocation_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            await invoke(self.fn.user_function, {self.fn.arg_name: to_service_bus_message(message)})
        except asyncio.CancelledError:
            renewal.cancel()
            await asyncio.shield(self._abandon(message))  # stopping: give the message back at once
            raise
        except Exception as exc:
            renewal.cancel()
            context = f" message_id={message.message_id} delivery_count={message.delivery_count}; abandoning"
            log_failed(self.fn.name, invocation_id, started, exc, context)
            outcome = await self._abandon(message)
            return Delivery(message.message_id, outcome, exc)
        renewal.cancel()
        outcome = await self._complete(message)
        if outcome is Outcome.COMPLETED and log.isEnabledFor(logging.DEBUG):
            # per message at DEBUG, as the HTTP front's per request (four lines per order); failures and lost locks
            # stay at ERROR/WARNING
            log_succeeded(self.fn.name, invocation_id, started, f" message_id={message.message_id}", logging.DEBUG)
        return Delivery(message.message_id, outcome)

    async def _abandon(self, message: ReceivedMessage) -> Outcome:
        from order_functions.infrastructure.messaging import MessageLockLost

        try:
            await self.queue.abandon(message.lock_token)
        except MessageLockLost:
            log.warning("%s: lock lost before abandon of message %s", self.fn.name, message.message_id)
            return Outcome.LOCK_LOST
        except Exception:
            log.exception("%s: abandon of message %s failed; it returns when its lock expires",
                          self.fn.name, message.message_id)
            return Outcome.UNSETTLED
        return Outcome.ABANDONED

    async def _complete(self, message: ReceivedMessage) -> Outcome:
        try:
            completed = await self._completions.complete(message.lock_token)
        except Exception:
            log.exception("%s: completing message %s failed; it returns when its lock expires",
                          self.fn.name, message.message_id)
            return Outcome.UNSETTLED
        if not completed:
            log.warning("%s: lock lost before completing message %s (delivery %d); it will be delivered again",
                        self.fn.name, message.message_id, message.delivery_count)
            return Outcome.LOCK_LOST
        return Outcome.COMPLETED

    async def _renew_locks(self, messages: list[ReceivedMessage]) -> None:
        from order_functions.infrastructure.messaging import MessageLockLost

        until = time.monotonic() + self.max_auto_lock_renewal_s
        interval = max(0.05, self.queue.lock_duration_s / 2)
        held = list(messages)
        while held and time.monotonic() + interval < until:
            await asyncio.sleep(interval)
            for message in list(held):
                try:
                    await self.queue.renew_lock(message.lock_token)
                except MessageLockLost:
                    log.warning("%s: lock of message %s lost while running", self.fn.name, message.message_id)
                    held.remove(message)
                except Exception as exc:
                    log.warning("%s: renewing the lock of message %s failed: %s",
                                self.fn.name, message.message_id, exc)


def _release(slots: asyncio.Semaphore, count: int) -> None:
    for _ in range(count):
        slots.release()


async def pump_local_queues(pool: Pool, pumps: list[QueuePump], stopping: asyncio.Event) -> None:
    """Waits for the bus database (it may still be starting), creates the schema, then runs every pump."""
    from order_functions.infrastructure.local_queue import ensure_schema

    backoff = 0.0
    while True:
        try:
            await ensure_schema(pool)
            break
        except Exception as exc:
            backoff = min(2.0, max(0.1, backoff * 2))
            log.warning("Local queue database not ready (%s); retrying in %.1f s", exc, backoff)
            await asyncio.sleep(backoff)
    await asyncio.gather(*(pump.run(stopping) for pump in pumps))


def to_service_bus_message(message: ReceivedMessage) -> ServiceBusMessage:
    """A local-queue delivery as the Service Bus trigger's ``func.ServiceBusMessage`` (with trigger metadata)."""
    application_properties = dict(message.application_properties)
    trigger_metadata: dict[str, Any] = {
        "MessageId": message.message_id,
        "DeliveryCount": message.delivery_count,
        "SequenceNumber": message.sequence_number,
        "EnqueuedTimeUtc": message.enqueued_time_utc.isoformat(),
        "LockedUntil": message.locked_until_utc.isoformat(),
        "LockToken": message.lock_token,
        "ContentType": message.content_type,
        "ApplicationProperties": application_properties,
        "UserProperties": application_properties,
    }
    return ServiceBusMessage(
        body=message.body,
        message_id=message.message_id,
        delivery_count=message.delivery_count,
        application_properties=application_properties,
        user_properties={},
        content_type=message.content_type,
        enqueued_time_utc=message.enqueued_time_utc,
        sequence_number=message.sequence_number,
        lock_token=message.lock_token,
        locked_until=message.locked_until_utc,
        trigger_metadata=trigger_metadata,
    )
