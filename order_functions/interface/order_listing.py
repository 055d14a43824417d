"""The `GET /orders` query: filters, page size and the opaque cursor, parsed all at once (every error reported)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from order_functions.domain.models import Order, OrderStatus
from order_functions.domain.validation import CUSTOMER_ID, Fault, ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class OrderListing:
    status: OrderStatus | None
    customer_id: str | None
    limit: int
    before: tuple[datetime, UUID] | None


def encode_cursor(last: Order) -> str:
    return base64.urlsafe_b64encode(f"{last.created_at.isoformat()}|{last.order_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Raises ValueError for anything this API did not hand out."""
    try:
        at, _, oid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), UUID(oid)
    except (UnicodeDecodeError, binascii.Error) as exc:
        raise ValueError("not a cursor") from exc


def parse_order_listing(params: Mapping[str, str]) -> OrderListing:
    errors: list[dict[str, str]] = []
    status = None
    if status_raw := params.get("status"):
        try:
            status = OrderStatus(status_raw)
        except ValueError:
            errors.append({"field": "status", "message": f"one of {', '.join(s.value for s in OrderStatus)}"})
    customer = params.get("customer_id")
    if customer is not None and not CUSTOMER_ID.match(customer):
        errors.append({"field": "customer_id", "message": "not a valid customer id"})
    limit_raw = params.get("limit", str(DEFAULT_LIMIT))
    limit = int(limit_raw) if limit_raw.isdigit() else 0
    if not 1 <= limit <= MAX_LIMIT:
        errors.append({"field": "limit", "message": f"a whole number between 1 and {MAX_LIMIT}"})
    before = None
    if cursor := params.get("cursor"):
        try:
            before = decode_cursor(cursor)
        except ValueError:
            errors.append({"field": "cursor", "message": "not a cursor this API returned"})
    if errors:
        raise ValidationFailed(errors, Fault.MALFORMED, "Invalid query")
    return OrderListing(status, customer, limit, before)
