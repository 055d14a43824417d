"""`@bearer_auth` is public-API only: the azure-functions decorators index the guarded function as the user
function, and an app with an HTTP route left unguarded refuses to be indexed."""

from __future__ import annotations

import inspect
import json

import azure.functions as func
import pytest

from order_functions.interface import app as app_module
from order_functions.interface.auth import (
    ANONYMOUS_ROUTES,
    SecuredFunctionApp,
    UnguardedRoute,
    bearer_auth,
    is_guarded,
)


def route_of(function: func.decorators.function_app.Function) -> str:
    return str(function.get_trigger().route).strip("/")  # type: ignore[union-attr]


def test_a_forgotten_guard_stops_the_app_from_being_indexed() -> None:
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.route(route="guarded", methods=["GET"])
    @bearer_auth
    async def guarded(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    @bp.route(route="forgotten", methods=["GET"])
    async def forgotten(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    app = SecuredFunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    with pytest.raises(UnguardedRoute, match=r"forgotten \(forgotten\)") as refused:
        app.get_functions()
    assert "guarded (guarded)" not in str(refused.value)


def test_the_framework_indexes_the_guarded_function_as_the_user_function() -> None:
    bp = func.Blueprint()  # type: ignore[no-untyped-call]

    @bp.route(route="things/{thing_id}", methods=["GET"])
    @bearer_auth
    async def read_thing(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    app = SecuredFunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    (function,) = app.get_functions()
    user = function.get_user_function()
    assert is_guarded(user) and inspect.iscoroutinefunction(user)
    assert list(inspect.signature(user).parameters) == ["req"]  # what the worker binds the trigger to
    assert function.get_function_name() == "read_thing"
    bindings = json.loads(function.get_function_json())["bindings"]
    assert {(b["name"], b["type"]) for b in bindings} == {("req", "httpTrigger"), ("$return", "http")}


def test_every_route_is_guarded_unless_anonymous_and_indexing_changes_nothing() -> None:
    first = app_module.build_app().get_functions()
    http = [f for f in first if f.is_http_function()]
    assert http and {route_of(f) for f in http} >= ANONYMOUS_ROUTES
    for function in http:
        route = route_of(function)
        assert is_guarded(function.get_user_function()) is (route not in ANONYMOUS_ROUTES), route
    # indexing wraps nothing: another app from the same blueprints holds the very same user functions
    again = app_module.build_app().get_functions()
    assert [f.get_user_function() for f in again] == [f.get_user_function() for f in first]
