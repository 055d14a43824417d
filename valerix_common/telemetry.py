"""Telemetry set-up shared by both services.

Backends, in order:
- APPLICATIONINSIGHTS_CONNECTION_STRING set: Azure Monitor (`configure_azure_monitor`: traces, metrics, logs);
- otherwise the standard OTEL_* variables choose local exporters: OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER =
  `console` (always available) or `otlp` (only if opentelemetry-exporter-otlp is installed; it is not a dependency);
- otherwise telemetry stays a no-op (the API's proxies), at no cost.

Whenever a backend exists, the libraries the Azure distro does not instrument are instrumented: grpc.aio (client
or server interceptors that carry W3C `traceparent` in gRPC metadata) and psycopg 3 (a span per statement). Both
patch constructors (`grpc.aio.insecure_channel`/`server`, `psycopg.AsyncConnection.connect`), so they must run
BEFORE the channel, server or pool connections are created — at process start, as `inventory_service.__main__`
and `order_functions.interface.app` do.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

_backend: str | None = None
_instrumented: list[Any] = []


def configure_logging(service: str) -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )


def configure_telemetry(service: str, *, instrument_grpc_server: bool = False) -> str:
    """Configures the process once. Returns the backend: 'azure-monitor', 'otel', 'off' (or 'already')."""
    global _backend
    if _backend is not None:
        return "already"
    os.environ.setdefault("OTEL_SERVICE_NAME", service)
    backend = "off"
    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        from azure.monitor.opentelemetry import configure_azure_monitor

        # grpc and psycopg 3 are not in the distro's instrumentations: added below
        configure_azure_monitor(logger_name="", enable_live_metrics=False)
        backend = "azure-monitor"
    else:
        traces = _configure_otel_traces(_exporter_setting("OTEL_TRACES_EXPORTER"))
        metrics = _configure_otel_metrics(_exporter_setting("OTEL_METRICS_EXPORTER"))
        if traces or metrics:
            backend = "otel"
    _backend = backend
    if backend != "off":
        instrument_libraries(grpc_client=not instrument_grpc_server, grpc_server=instrument_grpc_server)
    log.info("telemetry for %s: %s", service, backend)
    return backend


def _exporter_setting(name: str) -> str:
    """The SDK's own default is `otlp`; here unset means off, so a laptop run prints nothing unless asked."""
    return os.environ.get(name, "none").strip().lower()


def _configure_otel_traces(exporter_name: str) -> bool:
    if exporter_name in ("", "none"):
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning("OTEL_TRACES_EXPORTER=otlp but opentelemetry-exporter-otlp-proto-http is not installed; "
                        "using the console exporter")
            exporter = ConsoleSpanExporter()
        else:
            exporter = OTLPSpanExporter()
    else:
        if exporter_name != "console":
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported here; using the console exporter", exporter_name)
        exporter = ConsoleSpanExporter()
    provider = TracerProvider()  # resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def _configure_otel_metrics(exporter_name: str) -> bool:
    if exporter_name in ("", "none"):
        return False
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter, PeriodicExportingMetricReader

    exporter: MetricExporter
    if exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[import-not-found]
                OTLPMetricExporter,
            )
        except ImportError:
            log.warning("OTEL_METRICS_EXPORTER=otlp but opentelemetry-exporter-otlp-proto-http is not installed; "
                        "using the console exporter")
            exporter = ConsoleMetricExporter()
        else:
            exporter = OTLPMetricExporter()
    else:
        if exporter_name != "console":
            log.warning("OTEL_METRICS_EXPORTER=%s is not supported here; using the console exporter", exporter_name)
        exporter = ConsoleMetricExporter()
    metrics.set_meter_provider(MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter)]))
    return True


def instrument_libraries(*, grpc_client: bool, grpc_server: bool) -> None:
    """Globally instruments psycopg 3 and grpc.aio (client and/or server). Idempotent.

    Patches constructors, so only channels, servers and connections created afterwards are traced.
    The SQL commenter stays off: comments would defeat PgBouncer/statement statistics and add nothing here.
    """
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    wanted: list[Any] = [PsycopgInstrumentor()]
    if grpc_client:
        wanted.append(GrpcAioInstrumentorClient())  # type: ignore[no-untyped-call]
    if grpc_server:
        wanted.append(GrpcAioInstrumentorServer())  # type: ignore[no-untyped-call]
    for instrumentor in wanted:
        if instrumentor.is_instrumented_by_opentelemetry:
            continue
        if isinstance(instrumentor, PsycopgInstrumentor):
            instrumentor.instrument(enable_commenter=False)
        else:
            instrumentor.instrument()
        _instrumented.append(instrumentor)


def uninstrument_libraries() -> None:
    """Removes what `instrument_libraries` added (for tests sharing one process); existing objects keep theirs."""
    while _instrumented:
        _instrumented.pop().uninstrument()
