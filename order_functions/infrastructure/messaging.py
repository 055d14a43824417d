"""Messages on the `verify-order` queue as a transport sees them (Azure Service Bus or the local queue).

What the use cases send (`OutgoingMessage`, `MessageSender`) is defined by the application's ports; what a receiver
gets back (`ReceivedMessage`, lock loss) belongs to the transports and the local host."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from order_functions.application.ports import MessageSender, OutgoingMessage

__all__ = ["MessageLockLost", "MessageSender", "OutgoingMessage", "ReceivedMessage"]


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    body: bytes
    application_properties: dict[str, str]
    content_type: str
    delivery_count: int  # 1 on the first delivery, as Service Bus counts
    sequence_number: int
    enqueued_time_utc: datetime
    locked_until_utc: datetime
    lock_token: str


class MessageLockLost(Exception):
    """Settling a message whose lock expired (or was never ours): it will be, or was, delivered again."""
