"""The Azure Service Bus adapter, as far as is honest without Azure: configuration selects it, and what it hands
to the SDK is right. The SDK's network side is replaced only where a real namespace would be needed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from order_functions.config import OrderConfig
from order_functions.infrastructure.messaging import OutgoingMessage
from order_functions.infrastructure.servicebus_sender import AzureServiceBusSender

EMULATOR = "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"


class RecordingSender:
    """Stands in for azure.servicebus.ServiceBusSender (a network link to a namespace)."""

    def __init__(self, fail_first: bool = False) -> None:
        self.sent: list[Any] = []
        self.closed = False
        self.fail_first = fail_first
        self.in_flight = 0
        self.max_in_flight = 0
        self._guard = threading.Lock()

    def send_messages(self, message: Any) -> None:
        with self._guard:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.fail_first:
                self.fail_first = False
                raise ConnectionError("link detached")
            time.sleep(0.01)
            self.sent.append(message)
        finally:
            with self._guard:
                self.in_flight -= 1

    def close(self) -> None:
        self.closed = True


def test_settings_choose_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql://x@127.0.0.1/orders")
    monkeypatch.setenv("ServiceBusConnection__fullyQualifiedNamespace", "valerix.servicebus.windows.net")
    assert OrderConfig.from_env().servicebus_namespace == "valerix.servicebus.windows.net"
    sender = AzureServiceBusSender("verify-order", namespace="valerix.servicebus.windows.net")
    assert sender._client.fully_qualified_namespace == "valerix.servicebus.windows.net"
    from azure.identity import DefaultAzureCredential

    assert isinstance(sender._client._credential, DefaultAzureCredential)  # managed identity, no key anywhere
    with_string = AzureServiceBusSender("verify-order", connection_string=EMULATOR)
    assert with_string._client.fully_qualified_namespace == "localhost"
    with pytest.raises(ValueError):
        AzureServiceBusSender("verify-order")


async def test_message_fields_reach_the_sdk_and_a_broken_link_is_rebuilt() -> None:
    sender = AzureServiceBusSender("verify-order", connection_string=EMULATOR)
    links = [RecordingSender(fail_first=True), RecordingSender()]
    sender._client.get_queue_sender = lambda queue_name: links.pop(0)  # type: ignore[method-assign,assignment,misc]
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    message = OutgoingMessage("verify-42", b'{"order_id": "42"}', {"traceparent": "00-abc-def-01"},
                              scheduled_enqueue_time_utc=at)
    with pytest.raises(ConnectionError):
        await sender.send(message)
    await sender.send(message)  # a new link after the failure
    assert links == []
    sb = sender._sender.sent[0]
    assert sb.message_id == "verify-42" and sb.content_type == "application/json"
    assert b"".join(sb.body) == b'{"order_id": "42"}'
    assert sb.application_properties == {"traceparent": "00-abc-def-01"}
    assert sb.scheduled_enqueue_time_utc == at


async def test_concurrent_sends_are_serialised() -> None:
    import asyncio

    sender = AzureServiceBusSender("verify-order", connection_string=EMULATOR)
    link = RecordingSender()
    sender._client.get_queue_sender = lambda queue_name: link  # type: ignore[method-assign,assignment,misc]
    await asyncio.gather(*(sender.send(OutgoingMessage(f"m-{n}", b"{}")) for n in range(12)))
    assert len(link.sent) == 12
    assert link.max_in_flight == 1  # the SDK sender is not safe for concurrent use
