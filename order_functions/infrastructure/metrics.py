"""The Order Service's metric instruments (OpenTelemetry metrics API).

Exported by whatever MeterProvider the process has (Azure Monitor, an OTEL_METRICS_EXPORTER, a test reader);
with none they are the API's no-ops. Instruments are created at import through the API's proxy meter, which binds
to the real provider whenever it is set.

Observable gauges cannot await, so their values are computed by the reconciler run (`refresh_gauges`) and the
callbacks publish the last value.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from order_functions.application.ports import InventoryRefused, InventoryUnavailable, MessageSender
from order_functions.infrastructure.local_queue import LocalQueue
from valerix_common.db import Pool

meter = metrics.get_meter("valerix.orders")

# seconds; the checkout budget is 2 s, VerifyOrder's 15 s
LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0]

ORDER_OUTCOMES = meter.create_counter(
    "valerix.orders.outcomes",
    unit="{order}",
    description="Order state transitions out of pending (and cancellations), by status and settled_via",
)
INVENTORY_CALL_DURATION = meter.create_histogram(
    "valerix.inventory.call.duration",
    unit="s",
    description="Inventory gRPC calls as seen by the Order Service, by rpc.method and outcome code",
    explicit_bucket_boundaries_advisory=LATENCY_BUCKETS_S,
)
DEADLINE_MISSES = meter.create_counter(
    "valerix.inventory.deadline_misses",
    unit="{call}",
    description="Inventory calls that ended DEADLINE_EXCEEDED (the outcome is unknown; VerifyOrder settles it)",
)
VERIFY_REDELIVERIES = meter.create_counter(
    "valerix.verify.redeliveries",
    unit="{delivery}",
    description="VerifyOrder deliveries with delivery_count > 1 (an earlier attempt failed or lost its lock)",
)


class LastValue:
    """A value computed elsewhere (asynchronously) and published by an observable gauge's callback."""

    def __init__(self) -> None:
        self.value: float | None = None
        self.attributes: dict[str, str] = {}

    def set(self, value: float, **attributes: str) -> None:
        self.value = value
        self.attributes = attributes

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.value is None:
            return []
        return [Observation(self.value, self.attributes)]


OLDEST_PENDING_AGE = LastValue()
DEAD_LETTERED = LastValue()

meter.create_observable_gauge(
    "valerix.orders.oldest_pending_age",
    callbacks=[OLDEST_PENDING_AGE.observe],
    unit="s",
    description="Age of the oldest pending order at the last reconciler run (0 when none is pending)",
)
meter.create_observable_gauge(
    "valerix.verify.dead_lettered",
    callbacks=[DEAD_LETTERED.observe],
    unit="{message}",
    description="Messages in the local VerifyOrder queue's dead-letter store at the last reconciler run",
)


def record_outcome(status: str, settled_via: str, count: int = 1) -> None:
    if count > 0:
        ORDER_OUTCOMES.add(count, {"status": status, "settled_via": settled_via})


@contextmanager
def inventory_call(method: str) -> Iterator[None]:
    """Times one inventory call; the outcome code is OK or the gRPC status name the client translated."""
    started = time.perf_counter()
    code = "OK"
    try:
        yield
    except (InventoryUnavailable, InventoryRefused) as exc:
        code = exc.code
        raise
    except BaseException as exc:
        code = type(exc).__name__
        raise
    finally:
        attributes = {"rpc.method": method, "rpc.response.status_code": code}
        INVENTORY_CALL_DURATION.record(time.perf_counter() - started, attributes)
        if code == "DEADLINE_EXCEEDED":
            DEADLINE_MISSES.add(1, {"rpc.method": method})


_OLDEST_PENDING = (
    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) AS age"
    " FROM orders WHERE status = 'pending'"
)


async def refresh_gauges(pool: Pool, bus: MessageSender) -> None:
    """Cheap: one index-backed min() over pending orders (orders_pending_idx), plus the local queue's counters.

    On Azure Service Bus the dead-letter count comes from the namespace's own metrics (DeadletteredMessages)."""
    async with pool.connection() as conn:
        cur = await conn.execute(_OLDEST_PENDING)
        row = await cur.fetchone()
    OLDEST_PENDING_AGE.set(float(row["age"]) if row is not None else 0.0)
    if isinstance(bus, LocalQueue):
        counts = await bus.stats()
        DEAD_LETTERED.set(float(counts["dead_lettered"]), queue=bus.queue_name)


class OtelMetrics:
    """The application's Metrics port on the instruments above; the gauges read this process's pool and bus."""

    def __init__(self, pool: Pool, bus: MessageSender) -> None:
        self.pool = pool
        self.bus = bus

    def record_outcome(self, status: str, settled_via: str) -> None:
        record_outcome(status, settled_via)

    def inventory_call(self, method: str) -> AbstractContextManager[None]:
        return inventory_call(method)

    def verify_redelivered(self, queue: str) -> None:
        VERIFY_REDELIVERIES.add(1, {"messaging.destination.name": queue})

    async def refresh_gauges(self) -> None:
        await refresh_gauges(self.pool, self.bus)
