"""A JSON body parser for hostile input: every way to break `json.loads` becomes a 400 with field errors.

- nesting depth is measured by a linear scan *before* parsing (json.loads recurses: 7,000 `[` is a RecursionError);
- integers and decimals are bounded by their digit count before Python converts them (a 5,000-digit integer is
  a ValueError past `sys.get_int_max_str_digits()`, and slow below it);
- NaN / Infinity (not JSON) and numbers that overflow to infinity are rejected;
- duplicate keys are rejected (parsers disagree on which one wins: a checker and a writer could see different bodies);
- lone surrogates and NUL in strings are rejected (PostgreSQL text cannot store them).
Drop-in for `json.loads(body)` in `validation.parse_checkout`; raises its `ValidationFailed` (`Fault.MALFORMED`
is a 400, `Fault.TOO_LARGE` a 413). No I/O.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from order_functions.domain.validation import MAX_BODY_BYTES, Fault, ValidationFailed

# a string (possessive, so an unterminated one is consumed instead of backtracked: linear)
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


@dataclass(frozen=True)
class JsonLimits:
    max_bytes: int = MAX_BODY_BYTES
    max_depth: int = 16
    max_number_chars: int = 24  # sign, digits, point and exponent; a quantity needs 2


class _Rejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _malformed(message: str, fault: Fault = Fault.MALFORMED, title: str = "Malformed JSON") -> ValidationFailed:
    return ValidationFailed([{"field": "body", "message": message}], fault, title)


def nesting_depth(text: str, limit: int) -> int:
    """Deepest bracket nesting outside strings (removed first: "[[[" inside one does not count), stopping as soon
    as it passes `limit`, so a body of 8,000 `[` costs 17 steps."""
    deepest = 0
    brackets = (m.group() for m in _BRACKET.finditer(_STRING.sub("", text)))  # lazy: the early exit stays cheap
    for depth in itertools.accumulate(1 if b in "[{" else -1 for b in brackets):
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def _hooks(limits: JsonLimits) -> dict[str, Any]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise _Rejected(f"duplicate key {key[:64]!r}")
            result[key] = value
        return result

    def integer(raw: str) -> int:
        if len(raw) > limits.max_number_chars:
            raise _Rejected(f"a number longer than {limits.max_number_chars} characters")
        return int(raw)

    def decimal(raw: str) -> float:
        if len(raw) > limits.max_number_chars:
            raise _Rejected(f"a number longer than {limits.max_number_chars} characters")
        value = float(raw)
        if not math.isfinite(value):
            raise _Rejected("a number too large to represent")
        return value

    def constant(raw: str) -> Any:
        raise _Rejected(f"{raw} is not JSON")

    return {"object_pairs_hook": pairs, "parse_int": integer, "parse_float": decimal, "parse_constant": constant}


def _check_strings(value: Any) -> None:
    """Iterative walk (depth is already bounded, but a stack never recurses anyway)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            strings = [item]
        elif isinstance(item, dict):
            strings = list(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in strings:
            if "\x00" in text:
                raise _Rejected("a string contains NUL")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise _Rejected("a string contains an unpaired surrogate escape") from exc


def loads_strict(body: bytes, limits: JsonLimits = JsonLimits()) -> Any:
    if len(body) > limits.max_bytes:
        raise _malformed(f"at most {limits.max_bytes} bytes", Fault.TOO_LARGE, "Request body too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed("not UTF-8") from exc
    if nesting_depth(text, limits.max_depth) > limits.max_depth:
        raise _malformed(f"nested deeper than {limits.max_depth} levels")
    try:
        value = _parse(text, limits)
        if "\\u" in text:  # NUL and lone surrogates can only arrive as \u escapes (raw control chars are invalid)
            _check_strings(value)
    except _Rejected as exc:
        raise _malformed(exc.message) from exc
    return value


def _parse(text: str, limits: JsonLimits) -> Any:
    try:
        return json.loads(text, **_hooks(limits))
    except json.JSONDecodeError as exc:
        raise _Rejected(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:  # unreachable after the depth scan; kept so it can never become a 500
        raise _Rejected("nested too deeply") from exc


def loads_object(body: bytes, limits: JsonLimits = JsonLimits()) -> dict[str, Any]:
    value = loads_strict(body, limits)
    if not isinstance(value, dict):
        raise _malformed("must be a JSON object", title="Malformed request")
    return value
