"""HTTP answers in one place: the status code of each order state, and every error as RFC 9457 problem+json.

Use cases raise application errors (`application/errors.py`), adapters raise their port's errors, parsers raise
`ValidationFailed`; `problem_for` is the only translation of those into HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from order_functions.application import errors
from order_functions.application.identity import AuthenticationFailed, Forbidden
from order_functions.application.ports import InventoryUnavailable, StoreUnavailable
from order_functions.domain.models import OrderStatus
from order_functions.domain.order_messages import order_message
from order_functions.domain.validation import Fault, ValidationFailed

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://valerix.dev/problems/"
RETRY_AFTER = {"Retry-After": "2"}

# The HTTP status that reports an order's current state (the README's API), for first answers and replays alike.
STATUS_CODE_FOR: dict[OrderStatus, int] = {
    OrderStatus.CONFIRMED: 201,
    OrderStatus.PENDING: 202,
    OrderStatus.REJECTED: 409,
    OrderStatus.CANCELLED: 200,
    OrderStatus.SHIPPED: 200,
}


@dataclass(frozen=True)
class Problem(Exception):
    status: int
    title: str
    detail: str
    slug: str = "about:blank"
    errors: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def to_json(self, instance: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.slug if self.slug == "about:blank" else PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_response(problem: Problem, instance: str = "", headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(problem.to_json(instance)), status_code=problem.status, mimetype="application/problem+json",
        headers={**problem.headers, **(headers or {})},
    )


_VALIDATION = {
    Fault.MALFORMED: (400, "malformed-request"),
    Fault.TOO_LARGE: (413, "payload-too-large"),
    Fault.INVALID: (422, "validation-failed"),
}


def _validation(exc: ValidationFailed) -> Problem:
    status, slug = _VALIDATION[exc.fault]
    return Problem(status, exc.title, str(exc), slug, errors=exc.errors)


def _unknown_product(exc: errors.UnknownProduct) -> Problem:
    return Problem(422, "Unknown product", str(exc), "unknown-product",
                   errors=[{"field": "items", "message": f"unknown product {p}"} for p in exc.product_ids])


def _in_flight(exc: errors.IdempotencyInFlight) -> Problem:
    return Problem(409, "Request in flight", str(exc), "idempotency-in-flight", extra={"order_id": str(exc.order_id)})


def _key_reused(exc: errors.IdempotencyKeyReused) -> Problem:
    return Problem(422, "Idempotency-Key reused", str(exc), "idempotency-key-reused",
                   extra={"order_id": str(exc.order_id)})


def _order_extra(exc: errors.InvalidTransition) -> dict[str, Any]:
    return {"order": {**exc.order.to_json(), "message": order_message(exc.order)}}


def _rejected(exc: errors.InvalidTransition) -> Problem:
    return Problem(409, "Order was rejected", str(exc), "order-rejected", extra=_order_extra(exc))


def _state_conflict(exc: errors.InvalidTransition) -> Problem:
    return Problem(409, "Order state does not allow this", str(exc), "order-state-conflict", extra=_order_extra(exc))


def _inventory_unavailable(exc: InventoryUnavailable) -> Problem:
    return Problem(503, "Inventory unavailable", "the inventory service did not answer; retry shortly",
                   "inventory-unavailable", headers=RETRY_AFTER)


def _store_unavailable(exc: StoreUnavailable) -> Problem:
    return Problem(503, "Service unavailable", "the orders database is unavailable; retry shortly",
                   "database-unavailable", headers=RETRY_AFTER)


def _unauthorized(exc: AuthenticationFailed) -> Problem:
    return Problem(401, "Unauthorized", exc.detail, "unauthorized",
                   headers={"WWW-Authenticate": exc.www_authenticate, "Cache-Control": "no-store"})


def _forbidden(exc: Forbidden) -> Problem:
    challenge = exc.www_authenticate
    return Problem(403, "Forbidden", exc.detail, "forbidden",
                   headers={"WWW-Authenticate": challenge} if challenge else {})


def _rate_limited(exc: errors.CheckoutRateLimited) -> Problem:
    return Problem(429, "Too many orders", str(exc), "rate-limited", headers={"Retry-After": str(exc.retry_after_s)})


# First match wins (subclasses before their bases).
_MAPPING: list[tuple[type[Exception], Callable[[Any], Problem]]] = [
    (Problem, lambda p: p),
    (ValidationFailed, _validation),
    (AuthenticationFailed, _unauthorized),
    (Forbidden, _forbidden),
    (errors.CheckoutRateLimited, _rate_limited),
    (errors.OrderNotFound, lambda e: Problem(404, "Order not found", str(e), "order-not-found")),
    (errors.UnknownProduct, _unknown_product),
    (errors.IdempotencyInFlight, _in_flight),
    (errors.IdempotencyKeyReused, _key_reused),
    (errors.OrderRejected, _rejected),
    (errors.InvalidTransition, _state_conflict),
    (errors.AdminApiDisabled, lambda e: Problem(404, "Not found", str(e), "admin-api-disabled")),
    (errors.ChaosAdminRefused, lambda e: Problem(503, "Chaos controls unavailable", str(e), "chaos-admin-refused")),
    (errors.ChaosSettingsRefused, lambda e: Problem(422, "Invalid chaos settings", str(e), "validation-failed")),
    (errors.CheckoutTimedOut, lambda e: Problem(503, "Order not recorded in time", str(e), "checkout-timed-out",
                                                headers=RETRY_AFTER)),
    (InventoryUnavailable, _inventory_unavailable),
    (StoreUnavailable, _store_unavailable),
]

INTERNAL = Problem(500, "Internal error", "an unexpected error occurred", "internal")


def problem_for(exc: Exception) -> Problem | None:
    """The HTTP answer for an expected failure; None for anything unexpected (the caller logs it as a 500)."""
    for kind, to_problem in _MAPPING:
        if isinstance(exc, kind):
            return to_problem(exc)
    return None
