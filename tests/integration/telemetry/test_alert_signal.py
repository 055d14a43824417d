"""The response-time alert (infra/modules/alerts.bicep + response-time.kql) watches a signal the app really emits.

A real checkout produces the app's own HTTP span; the Azure Monitor exporter's own mapping turns it into the record
Application Insights stores (SERVER -> `requests`, INTERNAL -> `dependencies` of type InProc). The alert's query must
select that record by table, type and name, in both the plain case and inside a Functions worker context (Azure,
`telemetryMode: OpenTelemetry`), and must not select the inventory's gRPC spans.
"""

from __future__ import annotations

import re

from azure.monitor.opentelemetry.exporter.export.trace._exporter import _convert_span_to_envelope
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from tests import REPO_ROOT
from tests.integration.telemetry import GRPC_RESERVE, checkout_with_traceparent, in_trace, session, traced_stack
from tests.support.orders import call, http_request

QUERY = (REPO_ROOT / "infra" / "modules" / "response-time.kql").read_text(encoding="utf-8")
ENVELOPE_TABLE = {
    "Microsoft.ApplicationInsights.Request": "requests",
    "Microsoft.ApplicationInsights.RemoteDependency": "dependencies",
}


def _selected_by_query(span: ReadableSpan) -> bool:
    """Evaluates the query's per-table filters on the record the exporter makes of this span."""
    envelope = _convert_span_to_envelope(span)
    table = ENVELOPE_TABLE.get(str(envelope.name))
    data = envelope.data.base_data  # type: ignore[union-attr]
    match = re.search(rf"^\s*\({table} \| where (.*)\),?$", QUERY, re.MULTILINE) if table else None
    if match is None:
        return False
    condition = match.group(1)
    type_filter = re.search(r'type == "(\w+)"', condition)
    if type_filter and getattr(data, "type", None) != type_filter.group(1):
        return False
    pattern = re.search(r'name matches regex @"([^"]+)"', condition)
    assert pattern is not None, condition
    excluded = re.search(r'where name !startswith "([^"]+)"', QUERY)
    name = str(data.name)
    return bool(re.search(pattern.group(1), name)) and not (excluded and name.startswith(excluded.group(1)))


def test_query_measures_duration_and_reads_both_tables() -> None:
    assert "| project timestamp, name, duration" in QUERY  # metricMeasureColumn: duration (ms in both tables)
    assert "(requests | where" in QUERY and "(dependencies | where" in QUERY


async def test_alert_query_selects_the_apps_own_http_span_and_nothing_else(
    inventory_db_url: str, orders_db_url: str
) -> None:
    telemetry = session()
    tracer = trace.get_tracer("tests.functions-worker")
    async with traced_stack(telemetry, inventory_db_url, orders_db_url) as (inventory, orders):
        product = await inventory.new_product(5)
        flow = await checkout_with_traceparent(orders, product, 1)
        assert flow.status == 201, flow.body
        with tracer.start_as_current_span("worker invocation", kind=trace.SpanKind.SERVER) as worker:
            status, _, _ = await call("list_products", http_request("GET", "products"))
            assert status == 200
        worker_trace = f"{worker.get_span_context().trace_id:032x}"
    spans = telemetry.spans()
    checkout = [s for s in in_trace(spans, flow.trace_id) if s.name == "POST /api/orders"]
    assert len(checkout) == 1 and checkout[0].kind is trace.SpanKind.SERVER
    assert _selected_by_query(checkout[0])
    in_worker = [s for s in in_trace(spans, worker_trace) if s.name == "GET /api/products"]
    assert len(in_worker) == 1 and in_worker[0].kind is trace.SpanKind.INTERNAL
    assert _convert_span_to_envelope(in_worker[0]).data.base_data.type == "InProc"  # type: ignore[union-attr]
    assert _selected_by_query(in_worker[0])
    others = [s for s in spans if s.name in (GRPC_RESERVE, "worker invocation") or "postgresql" in str(s.attributes)]
    assert others, "expected gRPC and database spans in the same run"
    assert not [s.name for s in others if _selected_by_query(s)]
