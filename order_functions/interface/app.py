"""The FunctionApp: every function registered from the interface blueprints."""

from __future__ import annotations

import azure.functions as func

from order_functions.interface import bus_functions, http_api
from order_functions.interface.telemetry_setup import setup_telemetry

setup_telemetry()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(http_api.bp)
app.register_functions(bus_functions.bp)
