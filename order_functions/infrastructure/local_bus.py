"""The one place the local stand-in for Service Bus is configured and built (the app's sender, the local host's
receivers, tools): the same settings as the Bicep's `verify-order` queue unless overridden by the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from order_functions.infrastructure.local_queue import LocalQueue
from valerix_common.db import Pool
from valerix_common.env import env_float, env_int

# infra/modules/servicebus.bicep: lockDuration PT1M, maxDeliveryCount 10, duplicateDetectionHistoryTimeWindow PT10M
DEFAULT_LOCK_DURATION_S = 60.0
DEFAULT_MAX_DELIVERY_COUNT = 10
DEFAULT_DUPLICATE_WINDOW_S = 600.0


@dataclass(frozen=True)
class LocalBusSettings:
    lock_duration_s: float = DEFAULT_LOCK_DURATION_S
    max_delivery_count: int = DEFAULT_MAX_DELIVERY_COUNT
    duplicate_detection_window_s: float = DEFAULT_DUPLICATE_WINDOW_S

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LocalBusSettings:
        return cls(
            lock_duration_s=env_float("LOCAL_BUS_LOCK_DURATION_S", DEFAULT_LOCK_DURATION_S, minimum=0.1, env=env),
            max_delivery_count=env_int("LOCAL_BUS_MAX_DELIVERY_COUNT", DEFAULT_MAX_DELIVERY_COUNT, minimum=1, env=env),
            duplicate_detection_window_s=env_float(
                "LOCAL_BUS_DUPLICATE_WINDOW_S", DEFAULT_DUPLICATE_WINDOW_S, minimum=0, env=env
            ),
        )


def local_bus_database_url(env: Mapping[str, str]) -> str:
    """LOCAL_BUS_DATABASE_URL, falling back to the orders database."""
    return env.get("LOCAL_BUS_DATABASE_URL") or env.get("ORDERS_DATABASE_URL") or ""


def local_queue(pool: Pool, queue_name: str, settings: LocalBusSettings | None = None) -> LocalQueue:
    settings = settings or LocalBusSettings.from_env()
    return LocalQueue(
        pool,
        queue_name,
        lock_duration_s=settings.lock_duration_s,
        max_delivery_count=settings.max_delivery_count,
        duplicate_detection_window_s=settings.duplicate_detection_window_s,
    )
