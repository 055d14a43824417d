"""Messages on the `verify-order` queue as a transport sees them (Azure Service Bus or the local queue).

What the use cases send (`OutgoingMessage`, `MessageSender`) is defined by the application's ports; what a receiver
gets back (`ReceivedMessage`, lock loss) belongs to the transports, which live in `valerix_common.bus` /
`valerix_common.local_bus` since the inventory publishes too (re-exported here so existing imports keep working)."""

from __future__ import annotations

from order_functions.application.ports import MessageSender, OutgoingMessage
from valerix_common.bus.messages import MessageLockLost, ReceivedMessage

__all__ = ["MessageLockLost", "MessageSender", "OutgoingMessage", "ReceivedMessage"]
