"""Route templates in ASP.NET Core syntax, as the Functions host reads them: literals, ``{name}``, constraints
(``{id:int}``, ``{x:regex(...)}``), optional ``{name?}``, defaults ``{name=v}`` and catch-all ``{*rest}``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

from devstack.functions_host.settings import FunctionLoadError

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

