"""The public checkout API (the README's API). Thin: parse, call the use case or query, shape the response."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import azure.functions as func

from order_functions.application.deadline import Deadline
from order_functions.application.errors import CheckoutTimedOut
from order_functions.application.identity import OPS_ROLE, AuthenticationFailed, Principal, require_role
from order_functions.application.queries import failed_check, public_health
from order_functions.bootstrap import OrderServices, get_authenticator, get_services, ready_services
from order_functions.config import checkout_budget_s
from order_functions.domain.models import Order, OrderStatus
from order_functions.domain.order_messages import order_message
from order_functions.domain.validation import parse_checkout, parse_idempotency_key, parse_order_id
from order_functions.interface.arrival import arrived_at
from order_functions.interface.auth import bearer_auth, caller
from order_functions.interface.http_support import LATENCY, api, handle_errors, json_response
from order_functions.interface.openapi import openapi_document
from order_functions.interface.order_listing import encode_cursor, parse_order_listing
from order_functions.interface.problems import STATUS_CODE_FOR

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

RETRY_AFTER_S = "1"
STARTUP_TIMEOUT_S = 12


def order_location(order: Order) -> str:
    return f"/api/orders/{order.order_id}"


def order_json(order: Order) -> dict[str, Any]:
    """The order as every response shows it, with its sentence for people."""
    return {**order.to_json(), "message": order_message(order)}


def order_response(order: Order, *, replayed: bool = False, status: int | None = None) -> func.HttpResponse:
    headers = {"Location": order_location(order)}
    if order.status is OrderStatus.PENDING:
        headers["Retry-After"] = RETRY_AFTER_S
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(order_json(order), status or STATUS_CODE_FOR[order.status], headers)


@bp.route(route="orders", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@api
async def create_order(req: func.HttpRequest) -> func.HttpResponse:
    # one deadline for the whole answer, from the moment the request arrived (before its token was checked)
    deadline = Deadline.after(checkout_budget_s(), started_at=arrived_at())
    key = parse_idempotency_key(req.headers.get("Idempotency-Key"))
    body = parse_checkout(req.get_body())
    services = await services_within(deadline)
    result = await services.customer_checkout(caller(), body, key, deadline)
    return order_response(result.order, replayed=result.replayed)


async def services_within(deadline: Deadline) -> OrderServices:
    """The worker's services; a cold start (pools opening, migrations) that outlasts the deadline is a 503 with
    Retry-After, and goes on in the background for the next request."""
    if (ready := ready_services()) is not None:
        return ready
    starting = asyncio.ensure_future(get_services())
    try:
        return await asyncio.wait_for(asyncio.shield(starting), timeout=max(deadline.left(), 0.0))
    except TimeoutError as exc:
        starting.add_done_callback(_log_start_failure)
        log.warning("checkout: the order service was still starting when the %.1fs budget ran out",
                    deadline.budget_s)
        raise CheckoutTimedOut(deadline.budget_s) from exc


def _log_start_failure(task: asyncio.Future[OrderServices]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("order service start-up failed after a checkout stopped waiting: %r", task.exception())


@bp.route(route="orders/{order_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@api
async def get_order(req: func.HttpRequest) -> func.HttpResponse:
    order_id = parse_order_id(req.route_params.get("order_id", ""))
    order = await (await get_services()).customer_orders.get(caller(), order_id)
    return order_response(order, status=200)


@bp.route(route="orders/{order_id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@api
async def cancel_order(req: func.HttpRequest) -> func.HttpResponse:
    order_id = parse_order_id(req.route_params.get("order_id", ""))
    result = await (await get_services()).customer_orders.cancel(caller(), order_id)
    if result.complete:
        return order_response(result.order, status=200)
    # the intent is recorded; the release finishes as soon as the inventory answers
    return json_response(
        {**order_json(result.order), "cancellation": "accepted"}, 202,
        {"Location": order_location(result.order), "Retry-After": "2"},
    )


@bp.route(route="orders", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@api
async def list_orders(req: func.HttpRequest) -> func.HttpResponse:
    query = parse_order_listing(req.params)
    orders = await (await get_services()).customer_orders.recent(
        caller(), status=query.status, customer_id=query.customer_id, limit=query.limit, before=query.before
    )
    next_cursor = encode_cursor(orders[-1]) if len(orders) == query.limit else None
    return json_response({"orders": [order_json(o) for o in orders], "next_cursor": next_cursor})


@bp.route(route="products", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@api
async def list_products(req: func.HttpRequest) -> func.HttpResponse:
    listing = await (await get_services()).products.list()
    return json_response({
        "products": [
            {"product_id": p.product_id, "name": p.name, "price_cents": p.price_cents, "available": p.available,
             "reserved": p.reserved, "shipped": p.shipped, "version": p.version,
             "as_of": p.as_of.isoformat() if p.as_of else None}
            for p in listing.products
        ],
        "as_of": listing.as_of.isoformat() if listing.as_of else None,
        "source": listing.source,
        "complete": listing.complete,
    })


@bp.route(route="orders/{order_id}/ship", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@api
async def ship_order(req: func.HttpRequest) -> func.HttpResponse:
    """Operations: the order has left the warehouse (the `ops` role only)."""
    require_role(caller(), OPS_ROLE)
    order_id = parse_order_id(req.route_params.get("order_id", ""))
    result = await (await get_services()).ship_order(order_id)
    return order_response(result.order, replayed=result.replayed, status=200)


async def optional_caller(req: func.HttpRequest) -> Principal | None:
    """On an anonymous route: the caller if a valid token came along, else None (never a 401 for a probe)."""
    if not req.headers.get("Authorization"):
        return None
    try:
        return await get_authenticator().authenticate(req.headers.get("Authorization"))
    except AuthenticationFailed:
        return None
    except Exception:  # the validator itself is broken (settings?): the probe still answers, minimally
        log.exception("health: cannot validate the bearer token")
        return None


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def health(req: func.HttpRequest) -> func.HttpResponse:
    """Anonymous: ok / failed per dependency and nothing more. With an `ops` token: latencies, errors, bus kind."""
    principal = await optional_caller(req)
    detailed = principal is not None and principal.is_ops
    try:
        services = await asyncio.wait_for(get_services(), timeout=STARTUP_TIMEOUT_S)
    except Exception as exc:
        log.error("health: order service cannot start its clients: %r", exc)
        report = {"status": "unavailable", "checks": {"orders_database": failed_check(exc)}}
    else:
        report = await services.health()
    headers = {"Cache-Control": "no-store"}
    return json_response(report if detailed else public_health(report), 200 if report["status"] == "ok" else 503,
                         headers)


@bp.route(route="stats/latency", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@handle_errors  # not @api: polling the statistics must not count as the traffic they measure
async def latency_stats(req: func.HttpRequest) -> func.HttpResponse:
    require_role(caller(), OPS_ROLE)
    return json_response(LATENCY.stats(time.monotonic()).to_json(), headers={"Cache-Control": "no-store"})


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(openapi_document(), headers={"Cache-Control": "no-cache"})
