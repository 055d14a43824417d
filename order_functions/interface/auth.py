"""Who is calling, decided once per HTTP request before any handler runs.

Every HTTP function outside `ANONYMOUS_ROUTES` carries `@bearer_auth` directly under its `@bp.route(...)`: the
guard is the user function the azure-functions decorators receive, so the framework indexes and invokes it like
any other function (`functools.wraps` keeps the name and the signature the worker binds `req` by). Forgetting it
cannot open a route: `SecuredFunctionApp.get_functions()`, which the host calls to index the app, refuses an app
with an unguarded HTTP function outside `ANONYMOUS_ROUTES`. Handlers read the caller with `caller()`; the use
cases decide ownership and roles from that `Principal`.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

from order_functions.application.identity import AuthenticationFailed, Authenticator, Forbidden, Principal
from order_functions.bootstrap import get_authenticator
from order_functions.interface.arrival import stamped_on_arrival
from order_functions.interface.http_support import request_path

log = logging.getLogger(__name__)

# The only routes a caller without a token reaches: the probe, the contract and the dashboard's own files.
ANONYMOUS_ROUTES = frozenset({"health", "openapi.json", "dashboard", "dashboard/{*path}"})
# Marks a guarded function, so the app can check at indexing that no HTTP route was left without one.
_GUARDED = "__valerix_guarded__"

_caller: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("valerix_caller", default=None)

AuthenticatorSource = Callable[[], Authenticator]
Handler = Callable[..., Awaitable[func.HttpResponse]]


def caller() -> Principal:
    """The authenticated caller of the current request (only inside a guarded HTTP function)."""
    principal = _caller.get()
    if principal is None:
        raise RuntimeError("caller() outside an authenticated request: is this route in ANONYMOUS_ROUTES?")
    return principal


def auth_problem(exc: AuthenticationFailed | Forbidden, instance: str) -> func.HttpResponse:
    """RFC 9457 body plus the RFC 6750 challenge (401 always carries one; a 403 for a missing role does too)."""
    title = "Unauthorized" if isinstance(exc, AuthenticationFailed) else "Forbidden"
    slug = "unauthorized" if isinstance(exc, AuthenticationFailed) else "forbidden"
    body: dict[str, Any] = {
        "type": f"https://valerix.dev/problems/{slug}", "title": title, "status": exc.status, "detail": exc.detail,
    }
    if instance:
        body["instance"] = instance
    headers = {"Cache-Control": "no-store"}
    if exc.www_authenticate:
        headers["WWW-Authenticate"] = exc.www_authenticate
    return func.HttpResponse(json.dumps(body), status_code=exc.status, mimetype="application/problem+json",
                             headers=headers)


def authenticated(handler: Handler, authenticator: AuthenticatorSource) -> Handler:
    """The handler, run only for a request with a valid bearer token; the principal is `caller()` inside it."""

    @functools.wraps(handler)
    async def guarded(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            principal = await authenticator().authenticate(req.headers.get("Authorization"))
        except AuthenticationFailed as exc:
            return auth_problem(exc, request_path(req))
        except Exception as exc:  # the validator's own failure: refuse, never let a request through
            log.exception("%s %s: authentication failed unexpectedly", req.method, request_path(req))
            return auth_problem(AuthenticationFailed(f"validator error: {exc!r}"), request_path(req))
        token = _caller.set(principal)
        try:
            return await handler(req, *args, **kwargs)
        finally:
            _caller.reset(token)

    stamped = stamped_on_arrival(guarded)  # the checkout's deadline starts before the token is looked at
    setattr(stamped, _GUARDED, True)
    return stamped


def bearer_auth(handler: Handler) -> Handler:
    """`@bearer_auth` under `@bp.route(...)`: the route needs a valid bearer token (the process's validator)."""
    return authenticated(handler, get_authenticator)


def is_guarded(handler: Callable[..., Any]) -> bool:
    return bool(getattr(handler, _GUARDED, False))


def _http_route(function: Any) -> str | None:
    trigger = function.get_trigger()
    if trigger is None or not function.is_http_function():
        return None
    return str(getattr(trigger, "route", "") or function.get_function_name()).strip("/")


class UnguardedRoute(RuntimeError):
    """An HTTP function outside `ANONYMOUS_ROUTES` without `@bearer_auth`: the app must not be indexed."""


def check_guarded(functions: list[Any]) -> list[Any]:
    """The functions unchanged, or `UnguardedRoute` naming every HTTP route that would be open by mistake."""
    open_routes = [
        f"{function.get_function_name()} ({route})" for function in functions
        if (route := _http_route(function)) is not None and route not in ANONYMOUS_ROUTES
        and not is_guarded(function.get_user_function())
    ]
    if open_routes:
        raise UnguardedRoute(f"HTTP functions without @bearer_auth: {', '.join(open_routes)}")
    return functions


class SecuredFunctionApp(func.FunctionApp):
    """A FunctionApp that refuses to be indexed with an HTTP function left open (see the module docstring)."""

    def get_functions(self) -> list[Any]:
        return check_guarded(super().get_functions())
