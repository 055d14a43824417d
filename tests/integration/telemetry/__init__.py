"""In-memory telemetry for the trace and metric tests, safe to share one pytest process with the rest of the suite.

The global TracerProvider and MeterProvider can be set only once per process, so `session()` installs them on
first use (an SDK TracerProvider whose in-memory exporter sits behind a gate, and a MeterProvider with an
InMemoryMetricReader). Spans reach the exporter only inside `Telemetry.instrumented()`, which also instruments
grpc.aio (client and server) and psycopg for the duration and removes the instrumentation afterwards — other
tests see unpatched libraries and pay nothing. Instrumentation patches constructors, so everything traced must be
created inside the block: a fresh inventory server (`running_inventory`) and fresh order-app clients (`order_app`).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inventory_service.middleware.chaos import ChaosSettings
from tests.support.inventory import InventoryHarness, running_inventory
from tests.support.orders import OrderHarness, call, http_request, order_app
from valerix_common.telemetry import instrument_libraries, uninstrument_libraries

GRPC_RESERVE = "/valerix.inventory.v1.InventoryService/ReserveStock"


class _GatedProcessor(SpanProcessor):
    """Forwards finished spans to the exporter only while a telemetry test is running."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.open = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.open:
            self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.open:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    gate: _GatedProcessor
    reader: InMemoryMetricReader

    @asynccontextmanager
    async def instrumented(self) -> AsyncIterator[None]:
        instrument_libraries(grpc_client=True, grpc_server=True)
        self.exporter.clear()
        self.gate.open = True
        try:
            yield
        finally:
            self.gate.open = False
            uninstrument_libraries()

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points (cumulative since the provider was installed)."""
        data: MetricsData | None = self.reader.get_metrics_data()
        found: dict[str, list[Any]] = {}
        for resource_metrics in data.resource_metrics if data else []:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


_session: Telemetry | None = None


def session() -> Telemetry:
    global _session
    if _session is not None:
        return _session
    exporter = InMemorySpanExporter()
    gate = _GatedProcessor(SimpleSpanProcessor(exporter))
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another TracerProvider was installed meanwhile"
    provider.add_span_processor(gate)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    assert isinstance(metrics.get_meter_provider(), MeterProvider), "a MeterProvider was already installed"
    _session = Telemetry(exporter, gate, reader)
    return _session


def new_traceparent() -> tuple[str, str, str]:
    """(traceparent, trace id hex, parent span id hex) for a sampled incoming request."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def hex_trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def hex_span_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def parent_span_id(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None


def in_trace(spans: Sequence[ReadableSpan], trace_id: str) -> list[ReadableSpan]:
    return [s for s in spans if hex_trace_id(s) == trace_id]


def descendants(spans: Sequence[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """`root` and every span below it, by parent span id."""
    found = [root]
    ids = {hex_span_id(root)}
    changed = True
    while changed:
        changed = False
        for span in spans:
            if span not in found and parent_span_id(span) in ids:
                found.append(span)
                ids.add(hex_span_id(span))
                changed = True
    return found


def describe(spans: Sequence[ReadableSpan]) -> str:
    return "\n".join(
        f"{hex_trace_id(s)} {hex_span_id(s)} <- {parent_span_id(s)} {s.kind.name:8} {s.name}" for s in spans
    )


@dataclass
class Flow:
    trace_id: str
    incoming_span_id: str
    status: int
    body: dict[str, Any]


async def checkout_with_traceparent(orders: OrderHarness, product: str, quantity: int = 1) -> Flow:
    traceparent, trace_id, parent_id = new_traceparent()
    customer = f"c-trace-{uuid.uuid4().hex[:6]}"
    body = {"customer_id": customer, "items": [{"product_id": product, "quantity": quantity}]}
    status, answer, _ = await call(
        "create_order", http_request("POST", "orders", body, headers={"traceparent": traceparent},
                                     customer=customer)
    )
    return Flow(trace_id, parent_id, status, answer)


@asynccontextmanager
async def traced_stack(
    telemetry: Telemetry, inventory_db_url: str, orders_db_url: str, **settings: str
) -> AsyncIterator[tuple[InventoryHarness, OrderHarness]]:
    """An inventory server and order-app clients created after instrumenting, so both sides are traced."""
    async with (
        telemetry.instrumented(),
        running_inventory(inventory_db_url) as inventory,
        order_app(inventory, orders_db_url, **settings) as orders,
    ):
        yield inventory, orders


async def slow_checkout(inventory: InventoryHarness, orders: OrderHarness, product: str,
                        delay_s: float = 0.6) -> Flow:
    """A checkout whose ReserveStock misses the (short) deadline under the Gremlin, then VerifyOrder settles it."""
    inventory.running.chaos.update(ChaosSettings(gremlin_enabled=True, min_delay_s=delay_s, max_delay_s=delay_s))
    try:
        flow = await checkout_with_traceparent(orders, product)
    finally:
        inventory.running.chaos.update(ChaosSettings())
    assert flow.status == 202, json.dumps(flow.body)
    handled = await orders.deliver_verify()
    assert f"verify-{flow.body['order_id']}" in handled
    return flow
