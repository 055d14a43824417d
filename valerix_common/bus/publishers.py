"""Chooses the transport a service publishes to a topic with: Azure Service Bus when configured, else the local bus."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from valerix_common.bus.messages import MessagePublisher, Sendable
from valerix_common.db import Pool, make_pool
from valerix_common.local_bus import LocalTopic, ensure_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BusSettings:
    """`ServiceBusConnection__fullyQualifiedNamespace` (managed identity) or `ServiceBusConnection` select Azure;
    otherwise `LOCAL_BUS_DATABASE_URL` selects the local bus; with none of them there is no bus."""

    namespace: str = ""
    connection_string: str = ""
    local_bus_url: str = ""

    @property
    def kind(self) -> str:
        if self.namespace or self.connection_string:
            return "azure-service-bus"
        return "local-bus" if self.local_bus_url else "none"


@dataclass
class OpenPublisher:
    publisher: MessagePublisher
    kind: str
    close: Callable[[], Awaitable[None]]


async def open_topic_publisher(settings: BusSettings, topic: str) -> OpenPublisher | None:
    """A publisher for `topic`, or None when no bus is configured. `close()` releases whatever it opened."""
    if settings.kind == "azure-service-bus":
        from valerix_common.bus.azure_sender import AzureServiceBusSender

        sender = AzureServiceBusSender(
            topic,
            namespace=settings.namespace,
            connection_string="" if settings.namespace else settings.connection_string,
            topic=True,
        )
        return OpenPublisher(sender, settings.kind, sender.close)
    if settings.kind == "local-bus":
        from valerix_common.local_bus import stop_notifier

        pool = make_pool(settings.local_bus_url, name=f"local-bus-{topic}", min_size=1, max_size=4)
        # no waiting: a bus that is down must not keep the service from starting (the relay retries)
        await pool.open(wait=False)

        async def close() -> None:
            await stop_notifier(pool)
            await pool.close()

        return OpenPublisher(SchemaEnsuringTopic(pool, topic), settings.kind, close)
    return None


class SchemaEnsuringTopic(LocalTopic):
    """A local topic that creates/upgrades the bus schema before its first send, retrying on later sends until
    that succeeds, so a publisher can start before the bus database is reachable."""

    def __init__(self, pool: Pool, topic_name: str) -> None:
        super().__init__(pool, topic_name)
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()

    async def _ensure(self) -> None:
        if self._schema_ready:
            return
        async with self._schema_lock:
            if not self._schema_ready:
                await ensure_schema(self._pool)
                self._schema_ready = True

    async def send_batch(self, messages: Sequence[Sendable]) -> None:
        await self._ensure()
        await super().send_batch(messages)

    async def publish(self, message: Sendable) -> int:
        await self._ensure()
        return await super().publish(message)
