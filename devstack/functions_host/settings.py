"""The host's configuration: host.json, app settings (``%NAME%``), and whether a real Service Bus owns a trigger."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository: where `function_app.py` and host.json live
DEFAULT_APP = "function_app:app"
DEFAULT_BODY_LIMIT = 104_857_600  # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT default of the Functions host (100 MB)
SERVICE_BUS_SETTINGS_SUFFIXES = ("", "__fullyQualifiedNamespace")


class FunctionLoadError(RuntimeError):
    """The app or its metadata cannot be served (the real host would refuse to index it too)."""


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
    max_message_batch_size: int = 1000  # the v5 extension's default: messages per call of a cardinality-many trigger

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
            max_message_batch_size=max(1, int(bus.get("maxMessageBatchSize", 1000))),
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


def enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value

