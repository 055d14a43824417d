"""The `order-events` contract (docs/order-events.md): one event per order transition, published to topic
`order-events` with `message_id` = `event_id`.

This module is the whole contract: add-ons (notifications, payments, analytics) import it and nothing else from
the Order Service. It has no I/O and depends on the standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

ORDER_EVENTS_TOPIC = "order-events"
SOURCE = "valerix-orders"
SCHEMA_VERSION = 1

PLACED = "order.placed"
CONFIRMED = "order.confirmed"
REJECTED = "order.rejected"
CANCELLED = "order.cancelled"
SHIPPED = "order.shipped"
# An order reaches exactly one of these first; `shipped` follows `confirmed` (both are terminal for add-ons that
# tell the customer what happened).
TERMINAL_TYPES = frozenset({CONFIRMED, REJECTED, CANCELLED, SHIPPED})


def event_type_for(status: str) -> str:
    """`order.confirmed` for status `confirmed`; a new order (`pending`) is `order.placed`."""
    return PLACED if status == "pending" else f"order.{status}"


class MalformedEvent(ValueError):
    """The body is not an order event this contract understands: it can never be processed (dead-letter it)."""


@dataclass(frozen=True)
class OrderEvent:
    event_id: UUID
    type: str
    order_id: UUID
    customer_id: str
    version: int  # 1 for order.placed, +1 per transition of that order
    occurred_at: datetime
    status: str  # the order's state after the transition
    from_status: str | None
    reason: str
    via: str
    traceparent: str = ""
    tracestate: str = ""

    def to_body(self) -> bytes:
        body = {
            "event_id": str(self.event_id),
            "type": self.type,
            "source": SOURCE,
            "schema_version": SCHEMA_VERSION,
            "order_id": str(self.order_id),
            "customer_id": self.customer_id,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "order": {"status": self.status, "from_status": self.from_status, "reason": self.reason, "via": self.via},
            "traceparent": self.traceparent,
            "tracestate": self.tracestate,
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def parse_event(body: bytes) -> OrderEvent:
    """Raises MalformedEvent for anything that is not a well-formed order event."""
    try:
        data: Any = json.loads(body)
        if not isinstance(data, dict) or data.get("source") != SOURCE:
            raise MalformedEvent("not an order event")
        order = data["order"]
        event = OrderEvent(
            event_id=UUID(str(data["event_id"])),
            type=_text(data["type"]),
            order_id=UUID(str(data["order_id"])),
            customer_id=_text(data["customer_id"]),
            version=_positive(data["version"]),
            occurred_at=datetime.fromisoformat(_text(data["occurred_at"])),
            status=_text(order["status"]),
            from_status=None if order.get("from_status") is None else _text(order["from_status"]),
            reason=str(order.get("reason", "")),
            via=str(order.get("via", "")),
            traceparent=str(data.get("traceparent", "")),
            tracestate=str(data.get("tracestate", "")),
        )
    except MalformedEvent:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        raise MalformedEvent(f"malformed order event: {type(exc).__name__}: {exc}"[:300]) from exc
    if not event.type.startswith("order.") or event.occurred_at.tzinfo is None:
        raise MalformedEvent(f"malformed order event: type {event.type!r}, occurred_at without a time zone")
    return event


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"expected a non-empty string, got {type(value).__name__}")
    return value


def _positive(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MalformedEvent(f"expected a positive integer, got {value!r}")
    return value
