"""HTTP plumbing shared by the functions: JSON and problem+json responses, error mapping, latency recording."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
import psycopg
from psycopg_pool import PoolTimeout

from order_functions.application.ports import InventoryUnavailable
from order_functions.domain.problems import Problem
from order_functions.domain.rolling_window import RollingWindow
from order_functions.domain.validation import ValidationFailed

log = logging.getLogger(__name__)

# The Order Service's own response-time measurement, per worker process (the dashboard's 1 s alert).
LATENCY = RollingWindow(window_s=30.0, threshold_s=1.0)

Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")), status_code=status, mimetype="application/json",
        headers=headers or {},
    )


def problem_response(problem: Problem, instance: str = "", headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(problem.to_json(instance)), status_code=problem.status, mimetype="application/problem+json",
        headers=headers or {},
    )


def _path(req: func.HttpRequest) -> str:
    url = str(req.url)
    start = url.find("/api/")
    return url[start:].split("?", 1)[0] if start >= 0 else url


def handle_errors(handler: Handler) -> Handler:
    """Every failure becomes problem+json with a log line; nothing escapes as a bare 500."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        instance = _path(req)
        try:
            return await handler(req)
        except Problem as problem:
            return problem_response(problem, instance)
        except ValidationFailed as exc:
            slug = {400: "malformed-request", 413: "payload-too-large"}.get(exc.status, "validation-failed")
            return problem_response(Problem(exc.status, exc.title, str(exc), slug, errors=exc.errors), instance)
        except InventoryUnavailable as exc:
            log.warning("%s %s: inventory unavailable: %s", req.method, instance, exc)
            return problem_response(
                Problem(503, "Inventory unavailable", "the inventory service did not answer; retry shortly",
                        "inventory-unavailable"),
                instance, {"Retry-After": "2"},
            )
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.error("%s %s: orders database unavailable: %r", req.method, instance, exc, exc_info=True)
            return problem_response(
                Problem(503, "Service unavailable", "the orders database is unavailable; retry shortly",
                        "database-unavailable"),
                instance, {"Retry-After": "2"},
            )
        except Exception:
            log.exception("%s %s failed unexpectedly", req.method, instance)
            internal = Problem(500, "Internal error", "an unexpected error occurred", "internal")
            return problem_response(internal, instance)

    return wrapper


def timed(handler: Handler) -> Handler:
    """Records the server-side response time of API calls into the rolling window."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        started = time.monotonic()
        try:
            return await handler(req)
        finally:
            finished = time.monotonic()
            LATENCY.record(finished, finished - started)

    return wrapper


def api(handler: Handler) -> Handler:
    return timed(handle_errors(handler))
