"""Telemetry for the function app, configured once, at import of the app (before any channel or pool exists).

Inside Azure Functions with `"telemetryMode": "OpenTelemetry"` (host.json) and
PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true the worker configures Azure Monitor itself and sets each
invocation's trace context; configuring it again would duplicate every span. Only the instrumentations the distro
lacks (grpc.aio client, psycopg 3) are added then. Anywhere else `configure_telemetry` decides (Azure Monitor when
APPLICATIONINSIGHTS_CONNECTION_STRING is set, OTEL_* exporters locally, otherwise off).
"""

from __future__ import annotations

from valerix_common.env import env_bool
from valerix_common.telemetry import configure_telemetry, instrument_libraries


def setup_telemetry() -> str:
    if env_bool("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"):
        instrument_libraries(grpc_client=True, grpc_server=False)
        return "functions-worker"
    return configure_telemetry("valerix-orders", instrument_grpc_server=False)
