"""Who is calling, decided once per HTTP request before any handler runs.

`SecuredFunctionApp` wraps every HTTP function of the app when the host reads the app's functions, so a route
added anywhere (any blueprint, any helper) needs a valid bearer token unless its route is in `ANONYMOUS_ROUTES`.
Handlers read the caller with `caller()`; the use cases decide ownership and roles from that `Principal`.
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
from order_functions.interface.arrival import stamped_on_arrival
from order_functions.interface.http_support import request_path

log = logging.getLogger(__name__)

# The only routes a caller without a token reaches: the probe, the contract and the dashboard's own files.
ANONYMOUS_ROUTES = frozenset({"health", "openapi.json", "dashboard", "dashboard/{*path}"})
# Set on a wrapped function so an app built twice from the same blueprints does not wrap it twice.
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


def _http_route(function: Any) -> str | None:
    trigger = function.get_trigger()
    if trigger is None or not function.is_http_function():
        return None
    return str(getattr(trigger, "route", "") or function.get_function_name()).strip("/")


def guard_functions(functions: list[Any], authenticator: AuthenticatorSource) -> list[Any]:
    """Every HTTP function outside `ANONYMOUS_ROUTES` behind `authenticated` (in place; idempotent)."""
    for function in functions:
        route = _http_route(function)
        if route is None or route in ANONYMOUS_ROUTES:
            continue
        user_function = function.get_user_function()
        if not getattr(user_function, _GUARDED, False):
            # azure-functions keeps the user function in `_func` and has no public setter; the worker reads it
            # through get_user_function() after get_functions(), so the guarded one is what the host invokes
            function._func = authenticated(user_function, authenticator)
    return functions


class SecuredFunctionApp(func.FunctionApp):
    """A FunctionApp whose HTTP functions authenticate by default (see the module docstring)."""

    def __init__(self, *args: Any, authenticator: AuthenticatorSource, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._authenticator = authenticator

    def get_functions(self) -> list[Any]:
        return guard_functions(super().get_functions(), self._authenticator)
