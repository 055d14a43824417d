"""Moved to `valerix_common.local_bus` (both services use the local bus); kept so existing imports keep working."""

from valerix_common.local_bus import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    MIGRATIONS,
    SCHEMA,
    LocalQueue,
    LocalTopic,
    Pool,
    ensure_schema,
    subscription_queue,
)

__all__ = [
    "MAX_DELIVERY_COUNT_EXCEEDED",
    "MIGRATIONS",
    "SCHEMA",
    "LocalQueue",
    "LocalTopic",
    "Pool",
    "ensure_schema",
    "subscription_queue",
]
