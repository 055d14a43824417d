"""Azure Service Bus sender to a queue or a topic: managed identity (fully qualified namespace) or a connection string.

azure-servicebus senders are not safe for concurrent use, and async clients inside Functions have been reported
to hang (azure-sdk-for-python #44384); so: one synchronous sender per process, serialised by a lock, called from
a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from valerix_common.bus.messages import Sendable

log = logging.getLogger(__name__)

BATCH_CHUNK = 50  # messages per Service Bus batch


class AzureServiceBusSender:
    def __init__(
        self, queue_name: str, *, namespace: str = "", connection_string: str = "", topic: bool = False
    ) -> None:
        """`queue_name` is the entity: a queue, or a topic when `topic` is true (subscribers receive copies)."""
        from azure.servicebus import ServiceBusClient

        if namespace:
            from azure.identity import DefaultAzureCredential

            self._client = ServiceBusClient(namespace, DefaultAzureCredential())
        elif connection_string:
            self._client = ServiceBusClient.from_connection_string(connection_string)
        else:
            raise ValueError("need ServiceBusConnection__fullyQualifiedNamespace or ServiceBusConnection")
        self.queue_name = queue_name
        self.topic = topic
        self._sender: Any = None
        self._lock = threading.Lock()

    def _send_sync(self, message: Sendable | Sequence[Sendable]) -> None:
        from azure.servicebus import ServiceBusMessage

        def convert(one: Sendable) -> Any:
            return ServiceBusMessage(
                one.body,
                message_id=one.message_id,
                content_type=one.content_type,
                application_properties={k: v for k, v in one.application_properties.items()},
                scheduled_enqueue_time_utc=one.scheduled_enqueue_time_utc,
            )

        # a list goes as one batch (the SDK refuses one that does not fit: callers keep batches small)
        sb_message = [convert(m) for m in message] if isinstance(message, Sequence) else convert(message)
        with self._lock:
            if self._sender is None:
                self._sender = self._new_sender()
            try:
                self._sender.send_messages(sb_message)
            except Exception:
                # a broken link is rebuilt on the next send rather than reused
                self._close_sender()
                raise

    def _new_sender(self) -> Any:
        if self.topic:
            return self._client.get_topic_sender(topic_name=self.queue_name)
        return self._client.get_queue_sender(self.queue_name)

    def _close_sender(self) -> None:
        if self._sender is not None:
            try:
                self._sender.close()
            except Exception:
                log.warning("closing a broken Service Bus sender failed", exc_info=True)
            self._sender = None

    async def send(self, message: Sendable) -> None:
        await asyncio.to_thread(self._send_sync, message)

    async def send_batch(self, messages: Sequence[Sendable]) -> None:
        """All or nothing, in chunks of BATCH_CHUNK (small events: far below the 256 KB batch limit)."""
        for start in range(0, len(messages), BATCH_CHUNK):
            await asyncio.to_thread(self._send_sync, list(messages[start : start + BATCH_CHUNK]))

    def _peek_sync(self) -> None:
        if self.topic:
            # a topic has nothing to peek; opening a sender link authenticates against the entity (Sender role)
            with self._lock, self._client.get_topic_sender(topic_name=self.queue_name):
                return
        with self._lock, self._client.get_queue_receiver(self.queue_name) as receiver:
            receiver.peek_messages(max_message_count=1)

    async def check(self) -> None:
        """Health: a queue is peeked (the Receiver role, which the function app has for its trigger); a topic
        gets a sender link opened."""
        await asyncio.wait_for(asyncio.to_thread(self._peek_sync), timeout=5)

    async def close(self) -> None:
        def close_all() -> None:
            with self._lock:
                self._close_sender()
                self._client.close()

        await asyncio.to_thread(close_all)
