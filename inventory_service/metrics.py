"""The Inventory Service's metric instruments (OpenTelemetry metrics API; no-ops without a MeterProvider)."""

from __future__ import annotations

from opentelemetry import metrics

meter = metrics.get_meter("valerix.inventory")

GREMLIN_DELAY = meter.create_histogram(
    "valerix.gremlin.delay",
    unit="s",
    description="Latency injected by the Gremlin before a call, by rpc.method",
    explicit_bucket_boundaries_advisory=[0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 30.0, 60.0],
)
CRASHES = meter.create_counter(
    "valerix.schrodinger.crashes",
    unit="{crash}",
    description="Deliberate exits after a committed reservation. Recorded just before os._exit, so it is "
    "rarely exported: the CRITICAL log line and the container's restart count are the reliable record",
)
OUTBOX_PUBLISHED = meter.create_counter(
    "valerix.outbox.published",
    unit="{event}",
    description="Outbox events sent to the bus (at-least-once: a resend after a crash counts again), by event.type",
)
OUTBOX_SEND_FAILURES = meter.create_counter(
    "valerix.outbox.send_failures",
    unit="{failure}",
    description="Failed sends of outbox events (retried with backoff; the row stays unsent), by event.type",
)
OUTBOX_PUBLISH_DELAY = meter.create_histogram(
    "valerix.outbox.publish_delay",
    unit="s",
    description="From the decision's transaction to the bus accepting its event (database clock)",
    explicit_bucket_boundaries_advisory=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0],
)
