"""Order Service settings (Functions app settings, infra/README.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from order_functions.contracts.order_events import ORDER_EVENTS_TOPIC
from order_functions.domain.limits import OrderCaps
from order_functions.domain.rate_limit import RatePolicy
from order_functions.infrastructure.limits_settings import checkout_rate_from_env, order_caps_from_env
from valerix_common.env import env_bool, env_float, env_int, env_str

# The queue VerifyOrder listens on. The trigger binding needs it as a literal (bindings are read before app settings
# are); infra/modules/servicebus.bicep declares the same name.
VERIFY_QUEUE = "verify-order"
# The inventory's decisions and stock changes, and this service's subscription to them (same names in the Bicep).
RESERVATION_EVENTS_TOPIC = "reservation-events"
RESERVATION_EVENTS_SUBSCRIPTION = "order-service"


def checkout_budget_s() -> float:
    """INVENTORY_TIMEOUT_SECONDS: the budget of the whole checkout answer, counted from the request's arrival."""
    return env_float("INVENTORY_TIMEOUT_SECONDS", 2.0, minimum=0.05, maximum=30)


@dataclass(frozen=True)
class OrderConfig:
    orders_database_url: str
    inventory_target: str
    inventory_tls: bool
    inventory_timeout_s: float
    verify_timeout_s: float
    verify_queue: str
    order_events_topic: str
    bus_send_timeout_s: float
    servicebus_namespace: str
    servicebus_connection: str
    local_bus_database_url: str
    stale_after_s: float
    give_up_after_s: float
    idempotency_in_flight_s: float
    admin_api_enabled: bool
    inventory_admin_token: str
    db_pool_size: int
    order_caps: OrderCaps = field(default_factory=OrderCaps)  # ORDER_MAX_LINES, ORDER_MAX_UNITS_PER_LINE
    checkout_rate: RatePolicy = field(default_factory=RatePolicy)  # CHECKOUT_RATE_PER_MINUTE, CHECKOUT_RATE_BURST
    # an operator's ship call waits longer than a shopper's checkout: no 2 s promise there, and with a slow inventory
    # (the Gremlin's 2-5 s) a 2 s wait would fail every time
    ship_timeout_s: float = 10.0

    @classmethod
    def from_env(cls) -> OrderConfig:
        orders_url = env_str("ORDERS_DATABASE_URL")
        if not orders_url:
            raise RuntimeError("ORDERS_DATABASE_URL is not set")
        return cls(
            orders_database_url=orders_url,
            inventory_target=env_str("INVENTORY_GRPC_TARGET", "localhost:50051"),
            inventory_tls=env_bool("INVENTORY_GRPC_TLS"),
            inventory_timeout_s=checkout_budget_s(),
            verify_timeout_s=env_float("VERIFY_TIMEOUT_SECONDS", 15.0, minimum=0.1, maximum=120),
            verify_queue=env_str("VERIFY_QUEUE_NAME", VERIFY_QUEUE),
            order_events_topic=env_str("ORDER_EVENTS_TOPIC", ORDER_EVENTS_TOPIC),
            bus_send_timeout_s=env_float("BUS_SEND_TIMEOUT_SECONDS", 1.0, minimum=0.05, maximum=60),
            servicebus_namespace=env_str("ServiceBusConnection__fullyQualifiedNamespace"),
            servicebus_connection=env_str("ServiceBusConnection"),
            local_bus_database_url=env_str("LOCAL_BUS_DATABASE_URL") or orders_url,
            stale_after_s=env_float("RECONCILE_STALE_AFTER_SECONDS", 30.0, minimum=0.1),
            give_up_after_s=env_float("RECONCILE_GIVE_UP_AFTER_SECONDS", 600.0, minimum=1),
            idempotency_in_flight_s=env_float("IDEMPOTENCY_IN_FLIGHT_SECONDS", 30.0, minimum=1),
            admin_api_enabled=env_bool("ADMIN_API_ENABLED"),
            inventory_admin_token=env_str("INVENTORY_ADMIN_TOKEN"),
            db_pool_size=env_int("ORDERS_DB_POOL_SIZE", 20, minimum=1, maximum=200),
            order_caps=order_caps_from_env(),
            checkout_rate=checkout_rate_from_env(),
            ship_timeout_s=env_float("SHIP_TIMEOUT_SECONDS", 10.0, minimum=0.05, maximum=60),
        )
