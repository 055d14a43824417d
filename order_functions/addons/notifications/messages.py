"""Which order events tell the customer something, and what (no I/O)."""

from __future__ import annotations

from order_functions.contracts.order_events import (
    CANCELLED,
    CONFIRMED,
    REJECTED,
    SHIPPED,
    TERMINAL_TYPES,
    OrderEvent,
)


def notification_text(event: OrderEvent) -> str | None:
    """One plain sentence for a terminal transition; None for events the customer is not told about."""
    if event.type not in TERMINAL_TYPES:
        return None
    order = f"Your order {str(event.order_id)[:8]}"
    reason = event.reason.strip().rstrip(".")
    if event.type == CONFIRMED:
        return f"{order} is confirmed: your items are reserved."
    if event.type == REJECTED:
        return f"{order} could not be filled ({reason or 'out of stock'}); you have not been charged."
    if event.type == CANCELLED:
        return f"{order} was cancelled" + (f" ({reason})." if reason else ".")
    assert event.type == SHIPPED
    return f"{order} has shipped."
