"""Chooses the transport a service publishes to a topic with: Azure Service Bus when configured, else the local bus."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from valerix_common.bus.messages import MessagePublisher
from valerix_common.db import make_pool

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
        from valerix_common.local_bus import LocalTopic, ensure_schema, stop_notifier

        pool = make_pool(settings.local_bus_url, name=f"local-bus-{topic}", min_size=1, max_size=4)
        await pool.open(wait=True, timeout=30)
        try:
            await ensure_schema(pool)
        except BaseException:
            await pool.close()
            raise

        async def close() -> None:
            await stop_notifier(pool)
            await pool.close()

        return OpenPublisher(LocalTopic(pool, topic), settings.kind, close)
    return None
