"""Bus messages (queues and topics), independent of the transport (Azure Service Bus or the local bus)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    # Duplicate detection keys on this id: a repeat within the queue's window is accepted and dropped.
    message_id: str
    body: bytes
    application_properties: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    # None: deliverable at once. A scheduled copy needs a new message_id (scheduled sends are de-duplicated too).
    scheduled_enqueue_time_utc: datetime | None = None


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


class MessageSender(Protocol):
    async def send(self, message: Sendable) -> None:
        """Durably enqueues; raises when the bus cannot be reached (the caller logs and relies on the reconciler)."""

    async def check(self) -> None:
        """Health: raises when the bus cannot be reached."""

    async def close(self) -> None: ...


class Sendable(Protocol):
    """What the transports read from a message: `OutgoingMessage`, or a caller's own type with these fields (the
    Order Service's ports define theirs, so that its use cases depend on no transport)."""

    @property
    def message_id(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def application_properties(self) -> Mapping[str, str]: ...
    @property
    def content_type(self) -> str: ...
    @property
    def scheduled_enqueue_time_utc(self) -> datetime | None: ...


class MessagePublisher(Protocol):
    """What an outbox relay needs: durable sends to a queue or topic, and a way to let go of the link."""

    async def send(self, message: Sendable) -> None: ...

    async def send_batch(self, messages: Sequence[Sendable]) -> None:
        """Sends the messages in order, in as few round trips and commits as the transport allows. If it raises,
        some may have been sent (Azure chunks): the caller resends all of them, duplicate detection drops repeats."""

    async def close(self) -> None: ...
