"""Moved to `valerix_common.bus.messages` (the inventory publishes too); kept so existing imports keep working."""

from valerix_common.bus.messages import MessageLockLost, MessageSender, OutgoingMessage, ReceivedMessage

__all__ = ["MessageLockLost", "MessageSender", "OutgoingMessage", "ReceivedMessage"]
