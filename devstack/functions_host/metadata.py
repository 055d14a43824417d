"""The app's function metadata, read the way the Python worker indexes it: one trigger per function, its binding
settings, and parameters that match the bindings."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from devstack.functions_host.routes import CompiledRoute
from devstack.functions_host.schedules import TimerSchedule
from devstack.functions_host.settings import ROOT, FunctionLoadError, HostConfig, enum_value, resolve_app_settings


@dataclass
class HttpFunction:
    name: str
    user_function: Callable[..., Any]
    arg_name: str
    route: CompiledRoute
    methods: frozenset[str] | None  # None: every method
    auth_level: str


@dataclass
class QueueFunction:
    name: str
    user_function: Callable[..., Any]
    arg_name: str
    queue_name: str
    connection: str
    many: bool = False  # cardinality "many": the function takes the received batch as one list


@dataclass
class TimerFunction:
    name: str
    user_function: Callable[..., Any]
    arg_name: str
    schedule: str
    run_on_startup: bool


@dataclass
class AppFunctions:
    http: list[HttpFunction] = field(default_factory=list)
    queues: list[QueueFunction] = field(default_factory=list)
    timers: list[TimerFunction] = field(default_factory=list)


def _check_parameters(name: str, user_function: Callable[..., Any], bound: set[str]) -> None:
    """The Python worker refuses a function whose parameters and bindings disagree; so do we."""
    signature = inspect.signature(user_function)
    declared = {
        p.name
        for p in signature.parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    missing = bound - declared
    unbound = {
        p.name
        for p in signature.parameters.values()
        if p.name not in bound
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    if missing or unbound:
        raise FunctionLoadError(
            f"function {name!r}: parameters {sorted(declared)} do not match bindings {sorted(bound)}"
            " (the local runner supports only the trigger binding and an http $return)"
        )


def read_functions(app: func.FunctionApp, host: HostConfig, env: Mapping[str, str] | None = None) -> AppFunctions:
    """Reads the app's metadata. Calls ``app.get_functions()`` exactly once (it raises on a second call)."""
    result = AppFunctions()
    for fn in app.get_functions():
        name = str(fn.get_function_name())
        user_function = fn.get_user_function()
        bindings = [b.get_dict_repr() for b in fn.get_bindings()]
        triggers = [b for b in bindings if str(enum_value(b.get("type", ""))).endswith("Trigger")]
        if len(triggers) != 1:
            raise FunctionLoadError(f"function {name!r}: expected one trigger, found {len(triggers)}")
        trigger = triggers[0]
        kind = str(enum_value(trigger["type"]))
        arg_name = str(trigger["name"])
        others = [b for b in bindings if b is not trigger]
        unsupported = [
            b for b in others if not (str(enum_value(b.get("type"))) == "http" and b.get("name") == "$return")
        ]
        if unsupported:
            kinds = sorted({str(enum_value(b.get("type"))) for b in unsupported})
            raise FunctionLoadError(f"function {name!r}: bindings {kinds} are not supported by the local runner")
        _check_parameters(name, user_function, {arg_name})
        if kind == "httpTrigger":
            route = trigger.get("route")
            if route is None:
                route = name  # the host's default route is the function name
            if str(route).strip("/").lower().startswith("admin"):
                # the real host reserves the admin prefix and refuses to index such a function
                raise FunctionLoadError(f"function {name!r}: routes starting with 'admin' are reserved by the host")
            methods = trigger.get("methods")
            method_set = frozenset(str(enum_value(m)).upper() for m in methods) if methods else None
            auth_level = str(enum_value(trigger.get("authLevel", "function"))).lower()
            compiled = CompiledRoute.compile(str(route), host.route_prefix)
            result.http.append(HttpFunction(name, user_function, arg_name, compiled, method_set, auth_level))
        elif kind == "serviceBusTrigger":
            queue_name = service_bus_entity(trigger, env)
            connection = str(trigger.get("connection") or "ServiceBusConnection")
            many = str(enum_value(trigger.get("cardinality", "one"))).lower() == "many"
            result.queues.append(QueueFunction(name, user_function, arg_name, queue_name, connection, many))
        elif kind == "timerTrigger":
            schedule = resolve_app_settings(str(trigger["schedule"]), env)
            TimerSchedule(schedule)  # validate at load, as the host does
            result.timers.append(
                TimerFunction(name, user_function, arg_name, schedule, bool(trigger.get("runOnStartup", False)))
            )
        else:
            raise FunctionLoadError(f"function {name!r}: trigger {kind!r} is not supported by the local runner")
    # ASP.NET routing order: literal segments before constrained, before plain, optional and catch-all parameters.
    result.http.sort(key=lambda f: (f.route.precedence, f.route.template.lower()))
    return result


def load_app(spec: str) -> tuple[func.FunctionApp, Any]:
    """``module:attr`` → (FunctionApp, module)."""
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    module = importlib.import_module(module_name)
    app = getattr(module, attr, None)
    if not isinstance(app, func.FunctionApp):
        raise FunctionLoadError(f"{spec}: {type(app).__name__} is not an azure.functions.FunctionApp")
    return app, module


def service_bus_entity(trigger: Mapping[str, Any], env: Mapping[str, str] | None) -> str:
    """The local-bus queue a Service Bus trigger reads: its queue, or its topic subscription's own queue
    (`topic/subscriptions/name`, as the local bus keeps a subscription)."""
    from valerix_common.local_bus import subscription_path

    if trigger.get("topicName"):
        return subscription_path(
            resolve_app_settings(str(trigger["topicName"]), env),
            resolve_app_settings(str(trigger["subscriptionName"]), env),
        )
    return resolve_app_settings(str(trigger["queueName"]), env)
