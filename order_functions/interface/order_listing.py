"""The `GET /orders` query: filters, page size and the opaque cursor, parsed all at once (every error reported).

Strict: `limit` is 1-4 ASCII digits (not "²", not 5,000 digits), identifiers are matched whole, the cursor is only
what this API handed out, and a parameter this API does not know is an error rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from order_functions.domain import query_params
from order_functions.domain.identifiers import check_customer_id
from order_functions.domain.models import Order, OrderStatus
from order_functions.domain.validation import Fault, ValidationFailed

DEFAULT_LIMIT = query_params.DEFAULT_LIMIT
MAX_LIMIT = query_params.MAX_LIMIT
# `code` is the Functions host's own function-key parameter
KNOWN_PARAMETERS = frozenset({"status", "customer_id", "limit", "cursor", "code"})


@dataclass(frozen=True)
class OrderListing:
    status: OrderStatus | None
    customer_id: str | None
    limit: int
    before: tuple[datetime, UUID] | None


def encode_cursor(last: Order) -> str:
    return query_params.encode_cursor(query_params.Cursor(last.created_at, last.order_id))


def parse_order_listing(params: Mapping[str, str]) -> OrderListing:
    errors: list[dict[str, str]] = []
    status = None
    if (status_raw := params.get("status")) is not None:
        try:
            status = OrderStatus(status_raw)
        except ValueError:
            errors.append({"field": "status", "message": f"one of {', '.join(s.value for s in OrderStatus)}"})
    customer = params.get("customer_id")
    if customer is not None:
        errors += check_customer_id(customer)
    limit, problems = query_params.parse_limit(params.get("limit"))
    errors += problems
    cursor, problems = query_params.parse_cursor(params.get("cursor"))
    errors += problems
    errors += [{"field": str(name)[:40], "message": "unknown query parameter"}
               for name in sorted(set(params) - KNOWN_PARAMETERS)]
    if errors:
        raise ValidationFailed(errors, Fault.MALFORMED, "Invalid query")
    before = (cursor.created_at, cursor.order_id) if cursor else None
    return OrderListing(status, customer, limit, before)
