"""The FunctionApp: every function registered from the interface blueprints."""

from __future__ import annotations

import azure.functions as func

from order_functions.addons.notifications import functions as notifications
from order_functions.interface import bus_functions, dashboard, http_api
from order_functions.interface.auth import SecuredFunctionApp
from order_functions.interface.telemetry_setup import setup_telemetry

setup_telemetry()


def build_app() -> func.FunctionApp:
    """A FunctionApp with every function; a fresh one per call (the host reads an app's metadata only once).
    Its HTTP functions carry `@bearer_auth` unless listed in `auth.ANONYMOUS_ROUTES` (checked at indexing)."""
    function_app = SecuredFunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    function_app.register_functions(http_api.bp)
    function_app.register_functions(bus_functions.bp)
    function_app.register_functions(dashboard.bp)
    function_app.register_functions(notifications.bp)  # an add-on on order-events (order_functions/addons)
    return function_app


app = build_app()
