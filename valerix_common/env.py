"""Typed reads of environment settings (Functions app settings arrive as environment variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping


class SettingError(ValueError):
    """A setting is present but cannot be understood; failing at start-up beats failing per request."""


def env_str(name: str, default: str = "", *, env: Mapping[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingError(f"{name}={raw!r} is not a boolean (use true/false)")


def env_float(
    name: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    env: Mapping[str, str] | None = None,
) -> float:
    """`env` defaults to the process environment; a host passes its own mapping."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingError(f"{name}={raw!r} is not a number") from exc
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise SettingError(f"{name}={value} is outside [{minimum}, {maximum}]")
    return value


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    value = env_float(name, float(default), minimum=minimum, maximum=maximum, env=env)
    if value != int(value):
        raise SettingError(f"{name}={value} is not a whole number")
    return int(value)
