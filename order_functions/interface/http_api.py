"""The public checkout API (DESIGN.md §3). Thin: parse, call the use case, shape the response."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import azure.functions as func

from order_functions.domain.models import STATUS_CODE_FOR, Order, OrderStatus
from order_functions.domain.problems import Problem
from order_functions.domain.validation import (
    CUSTOMER_ID,
    ValidationFailed,
    parse_checkout,
    parse_idempotency_key,
    parse_order_id,
)
from order_functions.infrastructure.container import get_resources
from order_functions.interface.http_support import LATENCY, api, json_response

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

RETRY_AFTER_S = "1"


def order_location(order: Order) -> str:
    return f"/api/orders/{order.order_id}"


def order_response(order: Order, *, replayed: bool = False, status: int | None = None) -> func.HttpResponse:
    headers = {"Location": order_location(order)}
    if order.status is OrderStatus.PENDING:
        headers["Retry-After"] = RETRY_AFTER_S
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(order.to_json(), status or STATUS_CODE_FOR[order.status], headers)


@bp.route(route="orders", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@api
async def create_order(req: func.HttpRequest) -> func.HttpResponse:
    key = parse_idempotency_key(req.headers.get("Idempotency-Key"))
    request = parse_checkout(req.get_body())
    resources = await get_resources()
    result = await resources.service.checkout(request, key)
    return order_response(result.order, replayed=result.replayed)


@bp.route(route="orders/{order_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api
async def get_order(req: func.HttpRequest) -> func.HttpResponse:
    order_id = parse_order_id(req.route_params.get("order_id", ""))
    order = await (await get_resources()).orders.get(order_id)
    if order is None:
        raise Problem(404, "Order not found", f"no order {order_id}", "order-not-found")
    return order_response(order, status=200)


@bp.route(route="orders/{order_id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@api
async def cancel_order(req: func.HttpRequest) -> func.HttpResponse:
    order_id = parse_order_id(req.route_params.get("order_id", ""))
    order, complete = await (await get_resources()).service.cancel(order_id)
    if complete:
        return order_response(order, status=200)
    # the intent is recorded; the release finishes as soon as the inventory answers
    return json_response(
        {**order.to_json(), "cancellation": "accepted"}, 202,
        {"Location": order_location(order), "Retry-After": "2"},
    )


@bp.route(route="orders", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api
async def list_orders(req: func.HttpRequest) -> func.HttpResponse:
    status_raw = req.params.get("status")
    customer = req.params.get("customer_id")
    errors: list[dict[str, str]] = []
    status = None
    if status_raw:
        try:
            status = OrderStatus(status_raw)
        except ValueError:
            errors.append({"field": "status", "message": f"one of {', '.join(s.value for s in OrderStatus)}"})
    if customer is not None and not CUSTOMER_ID.match(customer):
        errors.append({"field": "customer_id", "message": "not a valid customer id"})
    limit_raw = req.params.get("limit", "50")
    limit = int(limit_raw) if limit_raw.isdigit() else 0
    if not 1 <= limit <= 200:
        errors.append({"field": "limit", "message": "a whole number between 1 and 200"})
    before = None
    cursor = req.params.get("cursor")
    if cursor:
        try:
            at, _, oid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
            before = (datetime.fromisoformat(at), UUID(oid))
        except (ValueError, UnicodeDecodeError, binascii.Error):
            errors.append({"field": "cursor", "message": "not a cursor this API returned"})
    if errors:
        raise ValidationFailed(errors, 400, "Invalid query")
    orders = await (await get_resources()).orders.recent(
        status=status, customer_id=customer, limit=limit, before=before
    )
    next_cursor = None
    if len(orders) == limit:
        last = orders[-1]
        next_cursor = base64.urlsafe_b64encode(f"{last.created_at.isoformat()}|{last.order_id}".encode()).decode()
    return json_response({"orders": [o.to_json() for o in orders], "next_cursor": next_cursor})


@bp.route(route="products", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api
async def list_products(req: func.HttpRequest) -> func.HttpResponse:
    resources = await get_resources()
    products = await resources.inventory.list_products(resources.config.inventory_timeout_s)
    resources.service.catalogue.remember(products)
    return json_response({"products": [
        {"product_id": p.product_id, "name": p.name, "price_cents": p.price_cents, "available": p.available,
         "reserved": p.reserved}
        for p in products
    ]})


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    checks: dict[str, dict[str, Any]] = {}
    try:
        resources = await asyncio.wait_for(get_resources(), timeout=12)
    except Exception as exc:
        log.error("health: order service cannot start its clients: %r", exc)
        checks["orders_database"] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
        return json_response({"status": "unavailable", "checks": checks}, 503)

    async def probe(name: str, check: Any) -> None:
        started = time.monotonic()
        try:
            await asyncio.wait_for(check, timeout=3)
            checks[name] = {"status": "ok"}
        except Exception as exc:
            log.warning("health: %s failed: %r", name, exc)
            checks[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}
        checks[name]["latency_ms"] = round((time.monotonic() - started) * 1000, 1)

    await asyncio.gather(
        probe("orders_database", resources.orders.ping()),
        probe("inventory", resources.inventory.check(2.0)),
        probe("bus", resources.bus.check()),
    )
    checks["bus"]["kind"] = resources.bus_kind
    ok = all(c["status"] == "ok" for c in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)


@bp.route(route="stats/latency", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def latency_stats(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(LATENCY.stats(time.monotonic()).to_json(), headers={"Cache-Control": "no-store"})
