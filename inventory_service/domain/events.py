"""What the inventory tells the world (docs/reservation-events.md): event types and the bodies of their messages.

Every decision and every stock change is written to the outbox in the transaction that makes it; the relay sends
it to topic `reservation-events` with `message_id` = `event_id`, so a resend is dropped by duplicate detection and
consumers de-duplicate by `event_id` too. A `stock.changed` event carries each product's `version` (bumped under
the row lock by every change): a consumer keeps the highest version it has seen and ignores older ones.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from inventory_service.domain.models import LineItem, Status

SOURCE = "valerix-inventory"
SCHEMA_VERSION = 1


class EventType(enum.StrEnum):
    RESERVED = "reservation.reserved"
    REJECTED = "reservation.rejected"
    RELEASED = "reservation.released"
    SHIPPED = "reservation.shipped"
    STOCK_CHANGED = "stock.changed"


class StockCause(enum.StrEnum):
    RESERVE = "reserve"
    RELEASE = "release"
    RESTOCK = "restock"
    SHIP = "ship"


DECISION_EVENTS = {
    Status.RESERVED: EventType.RESERVED,
    Status.REJECTED: EventType.REJECTED,
    Status.RELEASED: EventType.RELEASED,
    Status.SHIPPED: EventType.SHIPPED,
}


def reservation_payload(
    status: Status,
    items: tuple[LineItem, ...],
    *,
    short_product_id: str = "",
    reason: str = "",
    tombstone: bool = False,
) -> dict[str, Any]:
    """The reservation as decided: the Order Service settles the order from this alone."""
    return {
        "reservation": {
            "status": status.value,
            "items": [{"product_id": i.product_id, "quantity": i.quantity} for i in items],
            "short_product_id": short_product_id,
            "reason": reason,
            "tombstone": tombstone,
        }
    }


def message_body(
    *,
    event_id: UUID,
    event_type: str,
    order_id: UUID | None,
    occurred_at: datetime,
    payload: Mapping[str, Any],
    traceparent: str,
    tracestate: str,
) -> bytes:
    """The JSON a consumer receives; the trace context rides in the body as well as in message properties."""
    body = {
        "event_id": str(event_id),
        "type": event_type,
        "source": SOURCE,
        "schema_version": SCHEMA_VERSION,
        "order_id": str(order_id) if order_id else None,
        "occurred_at": occurred_at.isoformat(),
        **payload,
        "traceparent": traceparent,
        "tracestate": tracestate,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
