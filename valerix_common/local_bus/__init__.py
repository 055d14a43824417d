"""The local stand-in for Azure Service Bus, in PostgreSQL: queues, topics with subscriptions, LISTEN/NOTIFY."""

from valerix_common.db import Pool
from valerix_common.local_bus.notify import BusNotifier, notifier_for, stop_notifier
from valerix_common.local_bus.queue import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    MIGRATIONS,
    SCHEMA,
    LocalQueue,
    ensure_schema,
)
from valerix_common.local_bus.topics import LocalTopic, subscription_path, subscription_queue
from valerix_common.local_bus.topology import (
    DEFAULT_SUBSCRIPTIONS,
    ORDER_EVENTS_TOPIC,
    ORDER_SERVICE_SUBSCRIPTION,
    RESERVATION_EVENTS_TOPIC,
)

__all__ = [
    "DEFAULT_SUBSCRIPTIONS",
    "MAX_DELIVERY_COUNT_EXCEEDED",
    "MIGRATIONS",
    "ORDER_EVENTS_TOPIC",
    "ORDER_SERVICE_SUBSCRIPTION",
    "RESERVATION_EVENTS_TOPIC",
    "SCHEMA",
    "BusNotifier",
    "LocalQueue",
    "LocalTopic",
    "Pool",
    "ensure_schema",
    "notifier_for",
    "stop_notifier",
    "subscription_path",
    "subscription_queue",
]
