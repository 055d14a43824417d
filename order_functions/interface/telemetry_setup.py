"""Telemetry for the function app, configured once.

Inside Azure Functions with `telemetryMode: OpenTelemetry` and PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true the
worker configures Azure Monitor itself; configuring it again would duplicate every span. Only the instrumentations
the distro lacks (gRPC client, psycopg 3) are added then.
"""

from __future__ import annotations

from valerix_common.env import env_bool
from valerix_common.telemetry import configure_telemetry, instrument_libraries


def setup_telemetry() -> str:
    if env_bool("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"):
        instrument_libraries(grpc_server=False)
        return "functions-worker"
    return configure_telemetry("valerix-orders", instrument_grpc_server=False)
