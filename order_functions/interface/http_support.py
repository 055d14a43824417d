"""HTTP plumbing shared by the functions: JSON and problem+json responses, error mapping, latency recording, and
the invocation's span (the root of the order's distributed trace)."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
from opentelemetry import context, propagate, trace

from order_functions.application.errors import CheckoutTimedOut
from order_functions.application.ports import InventoryUnavailable, StoreUnavailable
from order_functions.domain.rolling_window import RollingWindow
from order_functions.interface.arrival import arrived_at
from order_functions.interface.problems import INTERNAL, problem_for, problem_response

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.orders.http")

# The Order Service's own response-time measurement, per worker process (the dashboard's 1 s alert).
LATENCY = RollingWindow(window_s=30.0, threshold_s=1.0)

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")), status_code=status, mimetype="application/json",
        headers=headers or {},
    )


def request_path(req: func.HttpRequest) -> str:
    """The request's path (`/api/orders/...`), without scheme, host or query."""
    return urlsplit(str(req.url)).path


def request_query(req: func.HttpRequest) -> str:
    """The raw query string, as the client sent it."""
    return urlsplit(str(req.url)).query


def route_template(req: func.HttpRequest) -> str:
    """`/api/orders/{order_id}/cancel` from the concrete path and the route parameters (low-cardinality span name)."""
    values = {value: name for name, value in (req.route_params or {}).items() if value}
    segments = request_path(req).split("/")
    return "/".join(f"{{{values[segment]}}}" if segment in values else segment for segment in segments)


def traced(handler: Handler) -> Handler:
    """One span per HTTP invocation, named like `POST /api/orders`.

    When a span is already current — the Functions worker with `telemetryMode: OpenTelemetry` attaches the
    invocation's context, and the host records the request itself — this span is an INTERNAL child of it.
    Otherwise it is the SERVER span, parented on the caller's W3C `traceparent` header when there is one.
    """

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        route = route_template(req)
        if trace.get_current_span().get_span_context().is_valid:
            parent, kind = context.get_current(), trace.SpanKind.INTERNAL
        else:
            headers = {str(k).lower(): str(v) for k, v in req.headers.items()}
            parent, kind = propagate.extract(headers), trace.SpanKind.SERVER
        attributes = {"http.request.method": req.method or "", "http.route": route, "url.path": request_path(req)}
        with tracer.start_as_current_span(f"{req.method} {route}", context=parent, kind=kind,
                                          attributes=attributes) as span:
            response = await handler(req)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR, f"HTTP {response.status_code}"))
            return response

    return wrapper


def handle_errors(handler: Handler) -> Handler:
    """Every failure becomes problem+json (mapped in interface/problems.py) with a log line; no bare 500."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        instance = request_path(req)
        try:
            return await handler(req)
        except Exception as exc:
            problem = problem_for(exc)
            if problem is None:
                log.exception("%s %s failed unexpectedly", req.method, instance)
                trace.get_current_span().record_exception(exc)
                return problem_response(INTERNAL, instance)
            if isinstance(exc, InventoryUnavailable):
                log.warning("%s %s: inventory unavailable: %s", req.method, instance, exc)
            elif isinstance(exc, CheckoutTimedOut | StoreUnavailable):
                # an outage answers many requests at once: one line each, no traceback to format on the answer's
                # path (the step that gave up has logged what it waited for)
                log.error("%s %s: %s: %s", req.method, instance, problem.title, exc)
            elif problem.status >= 500:
                log.error("%s %s: %s: %r", req.method, instance, problem.title, exc, exc_info=True)
            return problem_response(problem, instance)

    return wrapper


def timed(handler: Handler) -> Handler:
    """Records the server-side response time of API calls into the rolling window, from the request's arrival
    (authentication included: it is part of what the customer waits for)."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        started = arrived_at()
        try:
            return await handler(req)
        finally:
            finished = time.monotonic()
            LATENCY.record(finished, finished - started)

    return wrapper


def api(handler: Handler) -> Handler:
    return traced(timed(handle_errors(handler)))
