"""The order model and its state machine (docs/architecture.md). No I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    SHIPPED = "shipped"


class SettledVia(enum.StrEnum):
    INVENTORY_REPLY = "inventory-reply"  # the checkout call itself got the answer in time
    VERIFY_ORDER = "verify-order"  # the Service Bus path settled it
    RECONCILER = "reconciler"  # gave up and cancelled
    CANCEL = "cancel"  # the customer cancelled
    RESERVATION_EVENT = "reservation-event"  # the inventory's decision arrived on topic reservation-events
    SHIP = "ship"  # operations shipped it


# Terminal states never change back; every transition is a conditional update from one of these sources.
ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.CANCELLED, OrderStatus.SHIPPED}),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.SHIPPED: frozenset(),  # the stock has left: nothing to cancel
}


def sources_for(target: OrderStatus) -> tuple[OrderStatus, ...]:
    """The states from which `target` may be reached; the WHERE clause of a conditional update."""
    return tuple(sorted((s for s, targets in ALLOWED_TRANSITIONS.items() if target in targets), key=str))


@dataclass(frozen=True, order=True)
class LineItem:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class Order:
    order_id: UUID
    customer_id: str
    status: OrderStatus
    items: tuple[LineItem, ...]
    reason: str
    created_at: datetime
    updated_at: datetime
    settled_via: SettledVia | None = None
    settled_at: datetime | None = None
    verify_attempts: int = 0
    cancel_requested: bool = False

    @property
    def is_pending(self) -> bool:
        return self.status is OrderStatus.PENDING

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": str(self.order_id),
            "customer_id": self.customer_id,
            "status": self.status.value,
            "reason": self.reason,
            "items": [{"product_id": i.product_id, "quantity": i.quantity} for i in self.items],
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "settled_via": self.settled_via.value if self.settled_via else None,
            "settled_at": self.settled_at.isoformat() if self.settled_at else None,
            "settle_ms": (
                round((self.settled_at - self.created_at).total_seconds() * 1000) if self.settled_at else None
            ),
            "verify_attempts": self.verify_attempts,
        }

