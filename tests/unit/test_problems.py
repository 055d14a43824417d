"""The one mapping from application errors to HTTP problem+json (interface/problems.py), without servers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from order_functions.application import errors
from order_functions.application.ports import InventoryUnavailable, StoreUnavailable
from order_functions.domain.models import Order, OrderStatus
from order_functions.domain.validation import Fault, ValidationFailed
from order_functions.interface.problems import STATUS_CODE_FOR, problem_for, problem_response

NOW = datetime.now(UTC)
REJECTED = Order(uuid.uuid4(), "c-1", OrderStatus.REJECTED, (), "insufficient stock", NOW, NOW)
OID = uuid.uuid4()


@pytest.mark.parametrize(("error", "status", "slug"), [
    (errors.OrderNotFound(OID), 404, "order-not-found"),
    (errors.UnknownProduct(["X-1"]), 422, "unknown-product"),
    (errors.IdempotencyInFlight(OID), 409, "idempotency-in-flight"),
    (errors.IdempotencyKeyReused(OID), 422, "idempotency-key-reused"),
    (errors.OrderRejected(REJECTED, "nothing to cancel"), 409, "order-rejected"),
    (errors.AdminApiDisabled(), 404, "admin-api-disabled"),
    (errors.ChaosAdminRefused(), 503, "chaos-admin-refused"),
    (errors.ChaosSettingsRefused("bad"), 422, "validation-failed"),
    (ValidationFailed([{"field": "body", "message": "x"}], Fault.MALFORMED, "Malformed JSON"), 400,
     "malformed-request"),
    (ValidationFailed([{"field": "body", "message": "x"}], Fault.TOO_LARGE, "Too large"), 413, "payload-too-large"),
    (ValidationFailed([{"field": "items", "message": "x"}]), 422, "validation-failed"),
    (InventoryUnavailable("DEADLINE_EXCEEDED"), 503, "inventory-unavailable"),
    (StoreUnavailable("down"), 503, "database-unavailable"),
])
def test_each_expected_failure_has_one_answer(error: Exception, status: int, slug: str) -> None:
    problem = problem_for(error)
    assert problem is not None and problem.status == status
    response = problem_response(problem, "/api/orders")
    body = json.loads(response.get_body())
    assert response.status_code == status and response.mimetype == "application/problem+json"
    assert body["type"].endswith("/" + slug) and body["status"] == status and body["instance"] == "/api/orders"


def test_problem_details_carry_what_the_client_needs() -> None:
    rejected = problem_for(errors.OrderRejected(REJECTED, "nothing to cancel"))
    assert rejected is not None and rejected.to_json()["order"]["status"] == "rejected"
    unknown = problem_for(errors.UnknownProduct(["X-1", "X-2"]))
    assert unknown is not None and [e["message"] for e in unknown.errors] == ["unknown product X-1",
                                                                                "unknown product X-2"]
    busy = problem_response(problem_for(InventoryUnavailable("UNAVAILABLE")))  # type: ignore[arg-type]
    assert busy.headers["Retry-After"] == "2"


def test_unexpected_errors_are_not_mapped() -> None:
    assert problem_for(RuntimeError("bug")) is None


def test_order_states_have_their_status_codes() -> None:
    assert STATUS_CODE_FOR == {OrderStatus.CONFIRMED: 201, OrderStatus.PENDING: 202, OrderStatus.REJECTED: 409,
                               OrderStatus.CANCELLED: 200, OrderStatus.SHIPPED: 200}
