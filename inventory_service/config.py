from __future__ import annotations

from dataclasses import dataclass, field

from inventory_service.middleware.auth import CallerAuthSettings
from valerix_common.bus.publishers import BusSettings
from valerix_common.env import env_float, env_int, env_str


@dataclass(frozen=True)
class InventoryConfig:
    database_url: str
    grpc_port: int
    health_port: int
    host: str
    admin_token: str
    pool_size: int
    grace_seconds: int
    caller_auth: CallerAuthSettings  # who may reserve/release/ship (always required); see middleware/auth.py
    # where the outbox relay publishes reservation events (no bus: events wait in the outbox)
    bus: BusSettings = field(default_factory=BusSettings)
    events_topic: str = "reservation-events"
    outbox_batch_size: int = 100
    outbox_poll_interval_s: float = 1.0
    outbox_coalesce_s: float = 0.05  # the least time between two claims under load (relay.py)
    # past this, a start-up that is neither serving nor failed exits to be restarted (startup_watchdog.py);
    # above the pool's own 30 s connect wait, so a slow but live database still gets its chance
    startup_timeout_s: float = 40.0

    @classmethod
    def from_env(cls, database_url: str | None = None) -> InventoryConfig:
        url = database_url or env_str("INVENTORY_DATABASE_URL")
        if not url:
            raise RuntimeError("INVENTORY_DATABASE_URL is not set (devstack sets it for the embedded PostgreSQL)")
        host = env_str("INVENTORY_BIND_HOST", "[::]")
        return cls(
            database_url=url,
            grpc_port=env_int("INVENTORY_GRPC_PORT", 50051, minimum=0, maximum=65535),
            health_port=env_int("INVENTORY_HEALTH_PORT", 8081, minimum=0, maximum=65535),
            host=host,
            admin_token=env_str("INVENTORY_ADMIN_TOKEN"),
            pool_size=env_int("INVENTORY_DB_POOL_SIZE", 10, minimum=1, maximum=200),
            grace_seconds=env_int("INVENTORY_SHUTDOWN_GRACE_SECONDS", 10, minimum=0, maximum=300),
            bus=BusSettings(
                namespace=env_str("ServiceBusConnection__fullyQualifiedNamespace"),
                connection_string=env_str("ServiceBusConnection"),
                local_bus_url=env_str("LOCAL_BUS_DATABASE_URL"),
            ),
            events_topic=env_str("RESERVATION_EVENTS_TOPIC", "reservation-events"),
            outbox_batch_size=env_int("OUTBOX_BATCH_SIZE", 100, minimum=1, maximum=1000),
            outbox_poll_interval_s=env_float("OUTBOX_POLL_INTERVAL_S", 1.0, minimum=0.05, maximum=60),
            outbox_coalesce_s=env_float("OUTBOX_COALESCE_S", 0.05, minimum=0, maximum=1),
            caller_auth=CallerAuthSettings.from_env(),
            startup_timeout_s=env_float("INVENTORY_STARTUP_TIMEOUT_SECONDS", 40.0, minimum=1, maximum=600),
        )
