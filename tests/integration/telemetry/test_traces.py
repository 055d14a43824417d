"""One distributed trace per order: HTTP → gRPC client → gRPC server → PostgreSQL, and across the bus hop."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tests.integration.telemetry import (
    GRPC_RESERVE,
    checkout_with_traceparent,
    descendants,
    describe,
    hex_span_id,
    in_trace,
    parent_span_id,
    session,
    slow_checkout,
    traced_stack,
)


def _only(spans: list[ReadableSpan], name: str, kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name and s.kind is kind]


def _db(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get("db.system") == "postgresql"]


async def test_direct_checkout_is_one_trace_from_http_to_both_databases(
    inventory_db_url: str, orders_db_url: str
) -> None:
    telemetry = session()
    async with traced_stack(telemetry, inventory_db_url, orders_db_url) as (inventory, orders):
        product = await inventory.new_product(5)
        flow = await checkout_with_traceparent(orders, product, 2)
        assert flow.status == 201, flow.body
    spans = in_trace(telemetry.spans(), flow.trace_id)
    print(f"trace {flow.trace_id}:\n{describe(spans)}")

    [http] = _only(spans, "POST /api/orders", SpanKind.SERVER)
    assert parent_span_id(http) == flow.incoming_span_id  # parented on the incoming traceparent
    attributes = http.attributes or {}
    assert attributes["http.request.method"] == "POST" and attributes["http.route"] == "/api/orders"
    assert attributes["http.response.status_code"] == 201
    assert attributes["valerix.order_id"] == flow.body["order_id"]

    clients = _only(spans, GRPC_RESERVE, SpanKind.CLIENT)
    servers = _only(spans, GRPC_RESERVE, SpanKind.SERVER)
    assert clients and servers, describe(spans)
    # the server span is the client span's child: the context crossed in the gRPC metadata
    assert {parent_span_id(s) for s in servers} <= {hex_span_id(c) for c in clients}
    below_server = descendants(spans, servers[0])
    assert _db(below_server), "the inventory's reservation SQL is traced under the gRPC server span"
    below_http = {hex_span_id(s) for s in descendants(spans, http)}
    assert len(_db(spans)) >= 2 and all(hex_span_id(s) in below_http for s in _db(spans))
    assert all(hex_span_id(s) in below_http for s in clients + servers)


async def test_deadline_miss_and_verify_order_stay_in_the_checkout_trace(
    inventory_db_url: str, orders_db_url: str
) -> None:
    telemetry = session()
    async with traced_stack(telemetry, inventory_db_url, orders_db_url, INVENTORY_TIMEOUT_SECONDS="0.3") as (
        inventory, orders,
    ):
        product = await inventory.new_product(5)
        flow = await slow_checkout(inventory, orders, product)
        await asyncio.sleep(0.5)  # the Gremlin's late original call finishes (and is traced) before shutdown
    spans = in_trace(telemetry.spans(), flow.trace_id)
    print(f"trace {flow.trace_id}:\n{describe(spans)}")

    [http] = _only(spans, "POST /api/orders", SpanKind.SERVER)
    assert (http.attributes or {})["http.response.status_code"] == 202
    [send] = _only(spans, "servicebus send verify-order", SpanKind.PRODUCER)
    assert parent_span_id(send) in {hex_span_id(s) for s in descendants(spans, http)}
    [process] = _only(spans, "servicebus process verify-order", SpanKind.CONSUMER)
    assert parent_span_id(process) == hex_span_id(send)  # the message carried the PRODUCER span's context
    assert (process.attributes or {})["valerix.order_status"] == "confirmed"

    first_try = [c for c in descendants(spans, http) if c.name == GRPC_RESERVE and c.kind is SpanKind.CLIENT]
    assert first_try and first_try[0].status.status_code is StatusCode.ERROR  # DEADLINE_EXCEEDED
    under_verify = descendants(spans, process)
    verify_clients = _only(under_verify, GRPC_RESERVE, SpanKind.CLIENT)
    verify_servers = _only(under_verify, GRPC_RESERVE, SpanKind.SERVER)
    assert verify_clients and verify_servers, describe(spans)
    assert parent_span_id(verify_servers[0]) == hex_span_id(verify_clients[0])
    assert _db(under_verify), "the settlement's SQL belongs to the VerifyOrder span"
    # the late original ReserveStock, delayed by the Gremlin, is in the trace too (under the failed client span)
    late = [s for s in _only(spans, GRPC_RESERVE, SpanKind.SERVER) if s not in verify_servers]
    assert late and parent_span_id(late[0]) == hex_span_id(first_try[0])
