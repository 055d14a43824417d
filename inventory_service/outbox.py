"""The write side of the transactional outbox: SQL fragments that record events inside a decision's statement.

Each decision's statement (repository.py) appends its events with these fragments, so the event commits if and
only if the decision does. The W3C trace context of the call that made the decision is captured at write time.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from opentelemetry import propagate
from psycopg.types.json import Jsonb

from inventory_service.domain.events import EventType, StockCause

# A product as stock.changed reports it; RETURNING of an UPDATE sees the new values.
SNAPSHOT_COLUMNS = (
    "p.product_id, p.name, p.available, p.received - p.available - p.shipped AS reserved, p.shipped, p.version"
)
_COLUMNS = "(event_id, type, order_id, payload, traceparent, tracestate)"
# Event ids come from the database (gen_random_uuid): nothing per event travels as a parameter.
DECISION_ROW = "(gen_random_uuid(), %(event_type)s, %(order_id)s, %(payload)s, %(tp)s, %(ts)s)"


def stock_row(cause: StockCause, snapshot: str) -> str:
    """A stock.changed row whose products are the rows of CTE `snapshot` (selected with SNAPSHOT_COLUMNS)."""
    return (
        f"(gen_random_uuid(), '{EventType.STOCK_CHANGED}', %(order_id)s, jsonb_build_object('cause', '{cause}',"
        f" 'products', (SELECT jsonb_agg(to_jsonb(s) ORDER BY s.product_id) FROM {snapshot} s)), %(tp)s, %(ts)s)"
    )


def insert_events(*rows: str) -> str:
    return f"INSERT INTO outbox {_COLUMNS} VALUES {', '.join(rows)} RETURNING type"


def trace_context() -> tuple[str, str]:
    """(traceparent, tracestate) of the current span; empty strings when tracing is off."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", ""), carrier.get("tracestate", "")


def event_params(
    order_id: UUID | None, event_type: EventType | None = None, payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The parameters of DECISION_ROW / stock_row, with the trace context captured now."""
    traceparent, tracestate = trace_context()
    return {
        "event_type": event_type.value if event_type else None,
        "order_id": order_id,
        "payload": Jsonb(payload or {}),
        "tp": traceparent,
        "ts": tracestate,
    }
