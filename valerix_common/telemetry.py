"""Telemetry set-up shared by both services.

Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set; otherwise the standard OTEL_* variables choose a
local exporter (e.g. OTEL_TRACES_EXPORTER=console); otherwise tracing stays a no-op. The gRPC and psycopg
instrumentations are added in every case where a provider exists, so spans join one W3C trace.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

_configured = False


def configure_logging(service: str) -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )


def configure_telemetry(service: str, *, instrument_grpc_server: bool = False) -> str:
    """Returns which backend was configured: 'azure-monitor', 'otel' or 'off'."""
    global _configured
    if _configured:
        return "already"
    _configured = True
    os.environ.setdefault("OTEL_SERVICE_NAME", service)
    backend = "off"
    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(logger_name="", enable_live_metrics=False)
        backend = "azure-monitor"
    elif os.environ.get("OTEL_TRACES_EXPORTER", "none") not in ("", "none"):
        _configure_otel_sdk()
        backend = "otel"
    if backend != "off":
        instrument_libraries(instrument_grpc_server)
    log.info("telemetry for %s: %s", service, backend)
    return backend


def _configure_otel_sdk() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider()
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "console")
    if exporter_name != "console":
        log.warning("OTEL_TRACES_EXPORTER=%s is not installed here; using the console exporter", exporter_name)
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


def instrument_libraries(grpc_server: bool) -> None:
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    PsycopgInstrumentor().instrument(enable_commenter=False)
    if grpc_server:
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer

        GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
    else:
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient

        GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
