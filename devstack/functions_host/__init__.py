"""A thin local runner for the project's `azure.functions.FunctionApp`, for machines without Functions Core Tools.

It serves the *same* app object the real host loads, driven only by the app's own function metadata:

* HTTP triggers on ``http://127.0.0.1:FUNCTIONS_HTTP_PORT/{routePrefix}/{route}`` (route templates with constraints,
  optional and catch-all parameters, methods from the binding; a known route with another method is a 404, as the
  host answers; authLevel is not enforced locally, as with ``func start``);
* Service Bus queue triggers fed from the local PostgreSQL queue (auto-complete on success, abandon on exception,
  lock renewal while the function runs, ``maxConcurrentCalls`` from host.json) unless a real Service Bus connection
  is configured, in which case the real host must run the trigger;
* timer triggers on six-field NCRONTAB schedules (``%SETTING%`` references resolved from the environment), with
  ``runOnStartup`` and never two runs of one timer at a time.

It is a development convenience and never a second implementation of the handlers.

    python -m devstack.functions_host [--app module:attr] [--port 7071] [--host 127.0.0.1]

Environment: ``FUNCTIONS_APP`` (``module:attr``, default ``function_app:app``), ``FUNCTIONS_HTTP_PORT`` (7071),
``FUNCTIONS_HTTP_HOST`` (127.0.0.1), ``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`` (bytes, default 104857600 as the host),
``LOCAL_BUS_DATABASE_URL`` (falls back to ``ORDERS_DATABASE_URL``), ``LOCAL_BUS_MAX_DELIVERY_COUNT`` (10),
``LOCAL_BUS_LOCK_DURATION_S`` (60), ``ServiceBusConnection`` / ``ServiceBusConnection__fullyQualifiedNamespace``
(when set: no local polling).

Modules, one job each: ``settings`` (host.json, app settings), ``routes`` (route templates), ``schedules``
(NCRONTAB), ``metadata`` (the app's functions), ``invocation`` (calling a function), ``http_front``, ``queue_pump``,
``timer_runner``, ``host`` (lifecycle) and ``__main__`` (the command line).
"""

from devstack.functions_host.host import FunctionsHost
from devstack.functions_host.http_front import to_aiohttp_response
from devstack.functions_host.invocation import invoke
from devstack.functions_host.metadata import (
    AppFunctions,
    HttpFunction,
    QueueFunction,
    TimerFunction,
    load_app,
    read_functions,
)
from devstack.functions_host.queue_pump import Delivery, Outcome, QueuePump, to_service_bus_message
from devstack.functions_host.routes import CompiledRoute
from devstack.functions_host.schedules import TimerSchedule
from devstack.functions_host.settings import (
    FunctionLoadError,
    HostConfig,
    parse_timespan,
    real_service_bus_configured,
    resolve_app_settings,
)
from devstack.functions_host.timer_runner import TimerRunner

__all__ = [
    "AppFunctions",
    "CompiledRoute",
    "Delivery",
    "FunctionLoadError",
    "FunctionsHost",
    "HostConfig",
    "HttpFunction",
    "Outcome",
    "QueueFunction",
    "QueuePump",
    "TimerFunction",
    "TimerRunner",
    "TimerSchedule",
    "invoke",
    "load_app",
    "parse_timespan",
    "read_functions",
    "real_service_bus_configured",
    "resolve_app_settings",
    "to_aiohttp_response",
    "to_service_bus_message",
]
