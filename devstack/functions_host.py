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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import os
import re
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import azure.functions as func
from aiohttp import web
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest
from croniter import croniter  # type: ignore[import-untyped,unused-ignore]

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    from order_functions.infrastructure.local_queue import LocalQueue
    from order_functions.infrastructure.messaging import ReceivedMessage

log = logging.getLogger("devstack.functions_host")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_APP = "function_app:app"
DEFAULT_BODY_LIMIT = 104_857_600  # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT default of the Functions host (100 MB)
SERVICE_BUS_SETTINGS_SUFFIXES = ("", "__fullyQualifiedNamespace")
# Hop-by-hop or framing headers that aiohttp computes itself; everything else the function returns is kept.
_FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive"}


RECEIVE_WAIT_S = 1.0  # one receive's longest wait for a message (a NOTIFY ends it at once)


class FunctionLoadError(RuntimeError):
    """The app or its metadata cannot be served (the real host would refuse to index it too)."""


# ---------------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------------


def parse_timespan(value: str | int | float | None, default_s: float) -> float:
    """host.json TimeSpan (``[d.]hh:mm:ss[.fff]``) to seconds."""
    if value is None or value == "":
        return default_s
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*", value)
    if not match:
        raise FunctionLoadError(f"host.json TimeSpan {value!r} is not [d.]hh:mm:ss")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    max_concurrent_calls: int = 16
    max_auto_lock_renewal_s: float = 300.0

    @classmethod
    def from_host_json(cls, path: Path | None) -> HostConfig:
        if path is None or not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        extensions = data.get("extensions") or {}
        http = extensions.get("http") or {}
        bus = extensions.get("serviceBus") or {}
        # The v5 extension nests the settings under messageHandlerOptions in older hosts; accept both shapes.
        handler = bus.get("messageHandlerOptions") or {}
        prefix = http.get("routePrefix", "api")
        return cls(
            route_prefix=str(prefix if prefix is not None else "").strip("/"),
            max_concurrent_calls=max(1, int(bus.get("maxConcurrentCalls", handler.get("maxConcurrentCalls", 16)))),
            max_auto_lock_renewal_s=parse_timespan(
                bus.get("maxAutoLockRenewalDuration", handler.get("maxAutoRenewDuration")), 300.0
            ),
        )


_SETTING_REF = re.compile(r"%([^%\s]+)%")


def resolve_app_settings(value: str, env: Mapping[str, str] | None = None) -> str:
    """Binding expressions ``%NAME%`` are app settings (environment variables here); a missing one is an error."""
    source = os.environ if env is None else env

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in source:
            raise FunctionLoadError(f"app setting {name!r} referenced as %{name}% is not set")
        return source[name]

    return _SETTING_REF.sub(one, value)


def real_service_bus_configured(env: Mapping[str, str] | None = None, connection: str = "ServiceBusConnection") -> bool:
    """The seam: with a real bus configured the trigger belongs to the real host (or the emulator)."""
    source = os.environ if env is None else env
    return any(source.get(connection + suffix, "").strip() for suffix in SERVICE_BUS_SETTINGS_SUFFIXES)


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


# ---------------------------------------------------------------------------------------------------------------
# route templates (ASP.NET Core syntax, as the Functions host uses)
# ---------------------------------------------------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?\d+")
_GUID_RE = re.compile(
    r"(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}"
    r"|\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\))",
    re.IGNORECASE,
)


def _int_in(bits: int) -> Callable[[str], bool]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: str) -> bool:
        return bool(_INT_RE.fullmatch(value)) and low <= int(value) <= high

    return check


def _is_number(value: str) -> bool:
    try:
        Decimal(value)
    except InvalidOperation:
        return False
    return value.strip().lower() not in {"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_SIMPLE_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _int_in(32),
    "long": _int_in(64),
    "bool": lambda v: v.lower() in {"true", "false"},
    "guid": lambda v: bool(_GUID_RE.fullmatch(v)),
    "alpha": lambda v: bool(re.fullmatch(r"[a-zA-Z]+", v)),
    "decimal": _is_number,
    "double": _is_number,
    "float": _is_number,
    "datetime": _is_datetime,
    "required": lambda v: v != "",
}


def _constraint(spec: str, template: str) -> Callable[[str], bool]:
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?", spec, re.DOTALL)
    if not match:
        raise FunctionLoadError(f"route {template!r}: cannot read constraint {spec!r}")
    name, arg = match.group(1).lower(), match.group(2)
    if arg is None and name in _SIMPLE_CONSTRAINTS:
        return _SIMPLE_CONSTRAINTS[name]
    if arg is None:
        raise FunctionLoadError(f"route {template!r}: unknown constraint {spec!r}")
    try:
        if name == "regex":
            pattern = re.compile(arg, re.IGNORECASE)
            return lambda v: pattern.search(v) is not None
        args = [int(a) for a in arg.split(",")]
        if name == "minlength":
            return lambda v: len(v) >= args[0]
        if name == "maxlength":
            return lambda v: len(v) <= args[0]
        if name == "length":
            low, high = (args[0], args[0]) if len(args) == 1 else (args[0], args[1])
            return lambda v: low <= len(v) <= high
        if name in {"min", "max", "range"}:
            low = args[0] if name in {"min", "range"} else -(2**63)
            high = args[-1] if name in {"max", "range"} else 2**63 - 1
            return lambda v: bool(_INT_RE.fullmatch(v)) and low <= int(v) <= high
    except (ValueError, re.error, IndexError) as exc:
        raise FunctionLoadError(f"route {template!r}: bad constraint {spec!r}: {exc}") from exc
    raise FunctionLoadError(f"route {template!r}: unknown constraint {spec!r}")


@dataclass
class _Param:
    name: str
    group: str
    checks: list[Callable[[str], bool]]
    optional: bool
    catch_all: bool
    default: str | None


def _split_segment(segment: str, template: str) -> list[tuple[str, str]]:
    """A segment as [("lit", text) | ("param", spec)]; ``{{``/``}}`` are literal braces."""
    parts: list[tuple[str, str]] = []
    i, literal = 0, ""
    while i < len(segment):
        if segment.startswith("{{", i) or segment.startswith("}}", i):
            literal += segment[i]
            i += 2
        elif segment[i] == "{":
            j, spec = i + 1, ""
            while j < len(segment):
                if segment.startswith("}}", j):
                    spec += "}"
                    j += 2
                elif segment.startswith("{{", j):
                    spec += "{"
                    j += 2
                elif segment[j] == "}":
                    break
                else:
                    spec += segment[j]
                    j += 1
            if j >= len(segment):
                raise FunctionLoadError(f"route {template!r}: unclosed '{{'")
            if literal:
                parts.append(("lit", literal))
                literal = ""
            parts.append(("param", spec))
            i = j + 1
        elif segment[i] == "}":
            raise FunctionLoadError(f"route {template!r}: unmatched '}}'")
        else:
            literal += segment[i]
            i += 1
    if literal:
        parts.append(("lit", literal))
    return parts


def _parse_param(spec: str, index: int, template: str) -> _Param:
    """``name``, ``name:c1:c2(arg)``, ``name?``, ``name=default``, ``*name`` / ``**name`` (catch-all)."""
    catch_all = spec.startswith("*")
    text = spec.lstrip("*")
    name_match = re.match(r"[A-Za-z_][\w-]*", text)
    if not name_match:
        raise FunctionLoadError(f"route {template!r}: cannot read parameter {{{spec}}}")
    name = name_match.group(0)
    i = name_match.end()
    checks: list[Callable[[str], bool]] = []
    while i < len(text) and text[i] == ":":
        j = i + 1
        while j < len(text) and (text[j].isalnum() or text[j] == "_"):
            j += 1
        if j < len(text) and text[j] == "(":
            depth = 0
            while j < len(text):
                if text[j] == "\\":
                    j += 2
                    continue
                depth += text[j] == "("
                depth -= text[j] == ")"
                j += 1
                if depth == 0:
                    break
            if depth:
                raise FunctionLoadError(f"route {template!r}: unclosed '(' in {{{spec}}}")
        checks.append(_constraint(text[i + 1 : j], template))
        i = j
    optional = False
    default: str | None = None
    if i < len(text) and text[i] == "?":
        optional = True
        i += 1
    if i < len(text) and text[i] == "=":
        default, optional, i = text[i + 1 :], True, len(text)
    if i != len(text):
        raise FunctionLoadError(f"route {template!r}: cannot read parameter {{{spec}}}")
    return _Param(name, f"p{index}", checks, optional, catch_all, default)


@dataclass
class CompiledRoute:
    """One HTTP function's route template compiled to a regular expression plus constraint checks."""

    template: str
    regex: re.Pattern[str]
    params: list[_Param]
    precedence: tuple[int, ...]

    @classmethod
    def compile(cls, route: str, prefix: str) -> CompiledRoute:
        template = route.strip().strip("/")
        full = "/".join(p for p in (prefix.strip("/"), template) if p)
        segments = full.split("/") if full else []
        pattern = "^"
        params: list[_Param] = []
        precedence: list[int] = []
        for position, segment in enumerate(segments):
            if segment == "":
                raise FunctionLoadError(f"route {route!r}: empty segment")
            parts = _split_segment(segment, route)
            last = position == len(segments) - 1
            if len(parts) == 1 and parts[0][0] == "param":
                param = _parse_param(parts[0][1], len(params), route)
                params.append(param)
                if param.catch_all:
                    if not last:
                        raise FunctionLoadError(f"route {route!r}: a catch-all parameter must be the last segment")
                    pattern += f"(?:/(?P<{param.group}>.*))?"
                    precedence.append(5)
                elif param.optional:
                    if not last:
                        raise FunctionLoadError(f"route {route!r}: an optional parameter must be the last segment")
                    pattern += f"(?:/(?P<{param.group}>[^/]+))?"
                    precedence.append(4)
                else:
                    pattern += f"/(?P<{param.group}>[^/]+)"
                    precedence.append(3 if param.checks else 4)
                continue
            pattern += "/"
            multi = False
            for kind, text in parts:
                if kind == "lit":
                    pattern += re.escape(text)
                    continue
                multi = True
                param = _parse_param(text, len(params), route)
                if param.catch_all:
                    raise FunctionLoadError(f"route {route!r}: a catch-all parameter must be a whole segment")
                params.append(param)
                group = f"(?P<{param.group}>[^/]+?)"
                pattern += f"{group}?" if param.optional else group
            precedence.append(2 if multi else 1)
        pattern += "/?$"
        return cls(route, re.compile(pattern, re.IGNORECASE), params, tuple(precedence))

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Route values for a request path (undecoded, leading '/'), or None when it does not match."""
        found = self.regex.match(raw_path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for param in self.params:
            raw = found.group(param.group)
            if raw is None or raw == "":
                if not (param.optional or param.catch_all):
                    return None
                if param.default is not None:
                    values[param.name] = param.default
                continue
            value = unquote(raw)
            if not all(check(value) for check in param.checks):
                return None
            values[param.name] = value
        return values


# ---------------------------------------------------------------------------------------------------------------
# function metadata
# ---------------------------------------------------------------------------------------------------------------


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
        triggers = [b for b in bindings if str(_enum_value(b.get("type", ""))).endswith("Trigger")]
        if len(triggers) != 1:
            raise FunctionLoadError(f"function {name!r}: expected one trigger, found {len(triggers)}")
        trigger = triggers[0]
        kind = str(_enum_value(trigger["type"]))
        arg_name = str(trigger["name"])
        others = [b for b in bindings if b is not trigger]
        unsupported = [
            b for b in others if not (str(_enum_value(b.get("type"))) == "http" and b.get("name") == "$return")
        ]
        if unsupported:
            kinds = sorted({str(_enum_value(b.get("type"))) for b in unsupported})
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
            method_set = frozenset(str(_enum_value(m)).upper() for m in methods) if methods else None
            auth_level = str(_enum_value(trigger.get("authLevel", "function"))).lower()
            compiled = CompiledRoute.compile(str(route), host.route_prefix)
            result.http.append(HttpFunction(name, user_function, arg_name, compiled, method_set, auth_level))
        elif kind == "serviceBusTrigger":
            if trigger.get("topicName"):
                # a topic subscription is a queue of its own on the local bus (`topic/subscriptions/name`)
                from valerix_common.local_bus import subscription_path

                queue_name = subscription_path(
                    resolve_app_settings(str(trigger["topicName"]), env),
                    resolve_app_settings(str(trigger["subscriptionName"]), env),
                )
            else:
                queue_name = resolve_app_settings(str(trigger["queueName"]), env)
            connection = str(trigger.get("connection") or "ServiceBusConnection")
            result.queues.append(QueueFunction(name, user_function, arg_name, queue_name, connection))
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


async def invoke(user_function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """As the Python worker: await coroutine functions, run plain functions in the thread pool."""
    if inspect.iscoroutinefunction(user_function):
        return await user_function(**kwargs)
    result = await asyncio.to_thread(user_function, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


# ---------------------------------------------------------------------------------------------------------------
# timers
# ---------------------------------------------------------------------------------------------------------------


class TimerSchedule:
    """NCRONTAB with six fields (``{second} {minute} {hour} {day} {month} {day-of-week}``), UTC, or a TimeSpan."""

    def __init__(self, expression: str) -> None:
        self.expression = expression.strip()
        self.interval_s: float | None = None
        fields = self.expression.split()
        if len(fields) == 1 and ":" in self.expression:
            self.interval_s = parse_timespan(self.expression, 0.0)
            if self.interval_s <= 0:
                raise FunctionLoadError(f"timer schedule {expression!r}: interval must be positive")
            return
        if len(fields) != 6:
            raise FunctionLoadError(
                f"timer schedule {expression!r}: NCRONTAB needs six fields (seconds first), found {len(fields)}"
            )
        # NCRONTAB requires both day-of-month and day-of-week to match (unlike classic cron's OR).
        if not croniter.is_valid(self.expression, second_at_beginning=True):
            raise FunctionLoadError(f"timer schedule {expression!r} is not a valid NCRONTAB expression")

    def next_after(self, moment: datetime) -> datetime:
        if self.interval_s is not None:
            return moment + timedelta(seconds=self.interval_s)
        it = croniter(self.expression, moment, second_at_beginning=True, day_or=False)
        nxt: datetime = it.get_next(datetime)
        return nxt


# ---------------------------------------------------------------------------------------------------------------
# the host
# ---------------------------------------------------------------------------------------------------------------


class FunctionsHost:
    """Serves one FunctionApp: ``port = await host.start()``, later ``await host.stop()``."""

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        app_module: Any = None,
        host_json: Path | None = None,
        http_host: str | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        body_limit: int | None = None,
        bus_database_url: str | None = None,
        max_delivery_count: int | None = None,
        lock_duration_s: float | None = None,
        poll_interval_s: float = 0.1,
        shutdown_timeout_s: float = 10.0,
        enable_queues: bool = True,
        enable_timers: bool = True,
    ) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.app = app
        self.app_module = app_module
        if host_json is None and app_module is not None and getattr(app_module, "__file__", None):
            host_json = Path(app_module.__file__).resolve().parent / "host.json"
        self.config = HostConfig.from_host_json(host_json)
        self.http_host = http_host or self.env.get("FUNCTIONS_HTTP_HOST", "127.0.0.1")
        self.port = int(self.env.get("FUNCTIONS_HTTP_PORT", "7071")) if port is None else port
        self.body_limit = body_limit or int(self.env.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", DEFAULT_BODY_LIMIT))
        from order_functions.infrastructure.local_bus import LocalBusSettings, local_bus_database_url

        self.bus_database_url = bus_database_url or local_bus_database_url(self.env)
        defaults = LocalBusSettings.from_env(self.env)
        self.bus_settings = replace(
            defaults,
            lock_duration_s=lock_duration_s or defaults.lock_duration_s,
            max_delivery_count=max_delivery_count or defaults.max_delivery_count,
        )
        self.max_delivery_count = self.bus_settings.max_delivery_count
        self.lock_duration_s = self.bus_settings.lock_duration_s
        self.poll_interval_s = poll_interval_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.enable_queues = enable_queues
        self.enable_timers = enable_timers
        self.functions = read_functions(app, self.config, self.env)  # get_functions(): once, here
        self._runner: web.AppRunner | None = None
        self._pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]] | None = None
        self._background: list[asyncio.Task[None]] = []  # pollers and timer schedulers
        self._inflight: set[asyncio.Task[Any]] = set()  # message handlers and timer invocations
        self._stopping = asyncio.Event()
        self.bound_port: int | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: str, **kwargs: Any) -> FunctionsHost:
        app, module = load_app(spec)
        return cls(app, app_module=module, **kwargs)

    async def start(self) -> int:
        """Starts HTTP, the queue pollers and the timers; returns the bound HTTP port."""
        web_app = web.Application(client_max_size=self.body_limit, handler_args={"max_field_size": 65536})
        web_app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=self.shutdown_timeout_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.http_host, self.port)
        await site.start()
        self.bound_port = int(self._runner.addresses[0][1])
        self._log_listing()
        try:
            if self.functions.queues and self.enable_queues:
                await self._start_queues()
            if self.enable_timers:
                for timer in self.functions.timers:
                    task = asyncio.create_task(self._timer_loop(timer), name=f"timer:{timer.name}")
                    self._background.append(task)
        except BaseException:
            await self.stop()
            raise
        log.info("Host started; HTTP on http://%s:%s", self.http_host, self.bound_port)
        return self.bound_port

    async def stop(self) -> None:
        """Stops accepting work, lets in-flight work finish (bounded), closes the pool, calls the app's shutdown()."""
        self._stopping.set()
        deadline = time.monotonic() + self.shutdown_timeout_s
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()

        async def drain_http() -> None:
            if self._runner is not None:
                await self._runner.cleanup()  # closes the listener, waits for in-flight requests (bounded)
                self._runner = None

        async def drain_inflight() -> None:
            pending = set(self._inflight)
            if pending:
                log.info("Waiting for %d in-flight invocation(s)", len(pending))
                _, still = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
                for task in still:
                    task.cancel()  # message handlers abandon their message when cancelled
                if still:
                    log.warning(
                        "Cancelled %d invocation(s) still running after %.0f s", len(still), self.shutdown_timeout_s
                    )
                    await asyncio.wait(still, timeout=2.0)

        await asyncio.gather(drain_http(), drain_inflight())
        if self._pool is not None:
            from valerix_common.local_bus import stop_notifier

            await stop_notifier(self._pool)
            await self._pool.close()
            self._pool = None
        hook = getattr(self.app_module, "shutdown", None) if self.app_module is not None else None
        if callable(hook):
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("The app's shutdown() hook failed")
        log.info("Host stopped")

    def _log_listing(self) -> None:
        log.info("%s", self.describe())

    def describe(self) -> str:
        """The start-up listing, as ``func start`` prints it (HTTP URLs use the bound port once started)."""
        lines = ["", "Functions:", ""]
        shown_host = "localhost" if self.http_host in {"127.0.0.1", "0.0.0.0", "::1", "::"} else self.http_host
        for fn in sorted(self.functions.http, key=lambda f: f.name.lower()):
            methods = ",".join(sorted(fn.methods)) if fn.methods else "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS"
            prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
            route = fn.route.template.strip("/")
            url = f"http://{shown_host}:{self.bound_port or self.port}{prefix}/{route}"
            lines.append(f"        {fn.name}: [{methods}] {url}  (authLevel={fn.auth_level}, not enforced locally)")
            lines.append("")
        for q in sorted(self.functions.queues, key=lambda f: f.name.lower()):
            lines.append(f"        {q.name}: serviceBusTrigger (queue '{q.queue_name}', connection '{q.connection}')")
            lines.append("")
        for t in sorted(self.functions.timers, key=lambda f: f.name.lower()):
            startup = ", runOnStartup" if t.run_on_startup else ""
            lines.append(f"        {t.name}: timerTrigger ({t.schedule}{startup})")
            lines.append("")
        return "\n".join(lines)

    # --- HTTP ----------------------------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        method = request.method.upper()
        for fn in self.functions.http:
            values = fn.route.match(raw_path)
            if values is None or (fn.methods is not None and method not in fn.methods):
                continue
            return await self._invoke_http(fn, request, values)
        # The host answers an unknown route, a failed constraint and an unsupported method alike: 404, empty body.
        return web.Response(status=404)

    async def _invoke_http(self, fn: HttpFunction, request: web.Request, route_params: dict[str, str]) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        headers: dict[str, str] = {}
        for key in request.headers:
            if key.lower() not in {k.lower() for k in headers}:
                headers[key] = ", ".join(request.headers.getall(key))
        params: dict[str, str] = {}
        for key in request.query:
            if key not in params:
                params[key] = ",".join(request.query.getall(key))  # as ASP.NET StringValues.ToString()
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=headers,
            params=params,
            route_params=route_params,
            body=body,
        )
        invocation_id = str(uuid.uuid4())
        log.info(
            "Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.', Id=%s)",
            fn.name,
            invocation_id,
        )
        started = time.monotonic()
        try:
            result = await invoke(fn.user_function, {fn.arg_name: http_request})
            response = to_aiohttp_response(result)
        except Exception as exc:
            _log_failed(fn.name, invocation_id, started, exc)
            return web.Response(status=500)
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
            fn.name,
            invocation_id,
            (time.monotonic() - started) * 1000,
        )
        return response

    # --- Service Bus trigger from the local queue ---------------------------------------------------------------
    async def _start_queues(self) -> None:
        local = [q for q in self.functions.queues if not real_service_bus_configured(self.env, q.connection)]
        for q in self.functions.queues:
            if q not in local:
                log.warning(
                    "%s: a real Service Bus is configured (%s); the local runner does not poll it. "
                    "Run the real Functions host (func start) for this trigger.",
                    q.name,
                    q.connection,
                )
        if not local:
            return
        if not self.bus_database_url:
            raise FunctionLoadError(
                "serviceBusTrigger functions need LOCAL_BUS_DATABASE_URL or ORDERS_DATABASE_URL for the local queue "
                "(or a ServiceBusConnection for the real host)"
            )
        from order_functions.infrastructure.local_bus import local_queue
        from valerix_common.db import make_pool

        workers = self.config.max_concurrent_calls * len(local)
        self._pool = make_pool(self.bus_database_url, name="local-bus", min_size=1, max_size=min(4 + len(local), 10))
        await self._pool.open(wait=False)  # connects in the background; a database that is down is retried
        queues = [(q, local_queue(self._pool, q.queue_name, self.bus_settings)) for q in local]
        log.info(
            "Local queue: %d trigger(s), up to %d concurrent call(s) each (%d in all), lock %.0f s, "
            "max delivery count %d",
            len(local),
            self.config.max_concurrent_calls,
            workers,
            self.lock_duration_s,
            self.max_delivery_count,
        )
        self._background.append(asyncio.create_task(self._run_queues(self._pool, queues), name="local-queue"))

    async def _run_queues(
        self,
        pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]],
        queues: list[tuple[QueueFunction, LocalQueue]],
    ) -> None:
        from order_functions.infrastructure import local_queue

        backoff = 0.0
        while True:
            try:
                await local_queue.ensure_schema(pool)
                break
            except Exception as exc:
                backoff = min(2.0, max(0.1, backoff * 2))
                log.warning("Local queue database not ready (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
        await asyncio.gather(*(self._poll_loop(q, queue) for q, queue in queues))

    async def _poll_loop(self, fn: QueueFunction, queue: LocalQueue) -> None:
        """One receiver per trigger; at most maxConcurrentCalls handlers at a time (the host's message pump)."""
        slots = asyncio.Semaphore(self.config.max_concurrent_calls)
        backoff = 0.0
        while not self._stopping.is_set():
            await slots.acquire()
            free = 1
            while free < self.config.max_concurrent_calls and not slots.locked():
                await slots.acquire()
                free += 1
            try:
                # wakes on the bus's NOTIFY the moment a message commits, polling anyway (bounded waits)
                messages: list[ReceivedMessage] = await queue.receive_wait(
                    max_messages=free, max_wait_s=RECEIVE_WAIT_S, poll_interval_s=self.poll_interval_s
                )
            except asyncio.CancelledError:
                for _ in range(free):
                    slots.release()
                raise
            except Exception as exc:
                for _ in range(free):
                    slots.release()
                backoff = min(2.0, max(0.1, backoff * 2))
                log.warning(
                    "%s: receiving from queue %r failed (%s); retrying in %.1f s", fn.name, fn.queue_name, exc, backoff
                )
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            for _ in range(free - len(messages)):
                slots.release()
            for message in messages:
                task = asyncio.create_task(self._handle_message(fn, queue, message), name=f"msg:{message.message_id}")
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
                task.add_done_callback(lambda _t: slots.release())

    async def _handle_message(self, fn: QueueFunction, queue: LocalQueue, message: ReceivedMessage) -> None:
        from order_functions.infrastructure.messaging import MessageLockLost

        renewal = asyncio.create_task(self._renew_lock(fn, queue, message))
        invocation_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            await invoke(fn.user_function, {fn.arg_name: to_service_bus_message(message)})
        except asyncio.CancelledError:
            renewal.cancel()
            with contextlib.suppress(Exception):
                await asyncio.shield(queue.abandon(message.lock_token))
            raise
        except Exception as exc:
            renewal.cancel()
            log.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms) message_id=%s delivery_count=%d; "
                "abandoning\n%s",
                fn.name,
                invocation_id,
                (time.monotonic() - started) * 1000,
                message.message_id,
                message.delivery_count,
                "".join(traceback.format_exception(exc)),
            )
            try:
                await queue.abandon(message.lock_token)
            except MessageLockLost:
                log.warning("%s: lock lost before abandon of message %s", fn.name, message.message_id)
            except Exception:
                log.exception(
                    "%s: abandon of message %s failed; it returns when its lock expires", fn.name, message.message_id
                )
            return
        renewal.cancel()
        try:
            await queue.complete(message.lock_token)
        except MessageLockLost:
            log.warning(
                "%s: lock lost before completing message %s (delivery %d); it will be delivered again",
                fn.name,
                message.message_id,
                message.delivery_count,
            )
            return
        except Exception:
            log.exception(
                "%s: completing message %s failed; it returns when its lock expires", fn.name, message.message_id
            )
            return
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms) message_id=%s",
            fn.name,
            invocation_id,
            (time.monotonic() - started) * 1000,
            message.message_id,
        )

    async def _renew_lock(self, fn: QueueFunction, queue: LocalQueue, message: ReceivedMessage) -> None:
        from order_functions.infrastructure.messaging import MessageLockLost

        until = time.monotonic() + self.config.max_auto_lock_renewal_s
        interval = max(0.05, self.lock_duration_s / 2)
        while time.monotonic() + interval < until:
            await asyncio.sleep(interval)
            try:
                await queue.renew_lock(message.lock_token)
            except MessageLockLost:
                log.warning("%s: lock of message %s lost while running", fn.name, message.message_id)
                return
            except Exception as exc:
                log.warning("%s: renewing the lock of message %s failed: %s", fn.name, message.message_id, exc)

    # --- timers -------------------------------------------------------------------------------------------------
    async def _timer_loop(self, fn: TimerFunction) -> None:
        schedule = TimerSchedule(fn.schedule)
        running: asyncio.Task[None] | None = None
        last: datetime | None = None

        def fire(due: datetime, past_due: bool, nxt: datetime) -> None:
            nonlocal running, last
            if running is not None and not running.done():
                log.warning(
                    "%s: previous run still in progress; skipping the occurrence due %s", fn.name, due.isoformat()
                )
                return
            status = {
                "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
                "Next": nxt.isoformat(),
                "LastUpdated": datetime.now(UTC).isoformat(),
            }
            request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
            running = asyncio.create_task(self._run_timer(fn, request), name=f"timer-run:{fn.name}")
            self._inflight.add(running)
            running.add_done_callback(self._inflight.discard)
            last = due

        now = datetime.now(UTC)
        if fn.run_on_startup:
            fire(now, False, schedule.next_after(now))
        due = schedule.next_after(now)
        while not self._stopping.is_set():
            for _ in range(1000):  # the loop clock may wake a hair early: sleep again rather than fire early
                delay = (due - datetime.now(UTC)).total_seconds()
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            now = datetime.now(UTC)
            late = (now - due).total_seconds()
            nxt = schedule.next_after(max(now, due))  # strictly after this occurrence
            fire(due, late > 1.0, nxt)
            due = nxt

    async def _run_timer(self, fn: TimerFunction, request: TimerRequest) -> None:
        invocation_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            await invoke(fn.user_function, {fn.arg_name: request})
        except Exception as exc:
            _log_failed(fn.name, invocation_id, started, exc)
            return
        log.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
            fn.name,
            invocation_id,
            (time.monotonic() - started) * 1000,
        )


# ---------------------------------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------------------------------


def _log_failed(name: str, invocation_id: str, started: float, exc: BaseException) -> None:
    """The host's failure line, with the traceback (the exception is not swallowed: it is the invocation's result)."""
    log.error(
        "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)\n%s",
        name,
        invocation_id,
        (time.monotonic() - started) * 1000,
        "".join(traceback.format_exception(exc)),
    )


def to_aiohttp_response(result: Any) -> web.Response:
    """The worker's HttpResponse → HTTP conversion (content type from mimetype/charset unless a header sets it)."""
    if result is None:
        return web.Response(status=204)  # http $return with no value: the host answers an empty response
    if isinstance(result, str):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function returned {type(result).__name__}, expected azure.functions.HttpResponse")
    response = web.Response(status=int(result.status_code), body=result.get_body() or b"")
    headers = result.headers
    for name in list(headers.keys()):
        if name.lower() in _FRAMING_HEADERS:
            continue
        values = headers.get_all(name) if hasattr(headers, "get_all") else [headers[name]]
        for value in values:
            response.headers.add(name, value)
    if "Content-Type" not in response.headers:
        mimetype, charset = result.mimetype, result.charset
        text = mimetype.startswith("text/")
        response.headers["Content-Type"] = f"{mimetype}; charset={charset}" if text else mimetype
    return response


def to_service_bus_message(message: ReceivedMessage) -> ServiceBusMessage:
    """A local-queue delivery as the Service Bus trigger's ``func.ServiceBusMessage`` (with trigger metadata)."""
    application_properties = dict(message.application_properties)
    trigger_metadata: dict[str, Any] = {
        "MessageId": message.message_id,
        "DeliveryCount": message.delivery_count,
        "SequenceNumber": message.sequence_number,
        "EnqueuedTimeUtc": message.enqueued_time_utc.isoformat(),
        "LockedUntil": message.locked_until_utc.isoformat(),
        "LockToken": message.lock_token,
        "ContentType": message.content_type,
        "ApplicationProperties": application_properties,
        "UserProperties": application_properties,
    }
    return ServiceBusMessage(
        body=message.body,
        message_id=message.message_id,
        delivery_count=message.delivery_count,
        application_properties=application_properties,
        user_properties={},
        content_type=message.content_type,
        enqueued_time_utc=message.enqueued_time_utc,
        sequence_number=message.sequence_number,
        lock_token=message.lock_token,
        locked_until=message.locked_until_utc,
        trigger_metadata=trigger_metadata,
    )


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------


async def serve(host: FunctionsHost) -> None:
    """Runs until SIGTERM/SIGINT, then stops gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await host.start()
    try:
        await stop.wait()
    finally:
        log.info("Shutting down")
        await host.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.functions_host", description=__doc__.split("\n")[0])
    parser.add_argument("--app", default=os.environ.get("FUNCTIONS_APP", DEFAULT_APP), help="module:attr of the app")
    parser.add_argument("--host", default=None, help="bind address (default FUNCTIONS_HTTP_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default FUNCTIONS_HTTP_PORT or 7071)")
    parser.add_argument("--host-json", type=Path, default=None, help="host.json (default: beside the app module)")
    parser.add_argument("--no-queues", action="store_true", help="do not poll the local queue")
    parser.add_argument("--no-timers", action="store_true", help="do not fire timer triggers")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    try:
        host = FunctionsHost.from_spec(
            args.app,
            host_json=args.host_json,
            http_host=args.host,
            port=args.port,
            enable_queues=not args.no_queues,
            enable_timers=not args.no_timers,
        )
        asyncio.run(serve(host))
    except FunctionLoadError as exc:
        log.error("Cannot start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
