"""Every body that used to reach a 500 (or be accepted twice over) is a 400 with a field error; nothing recurses."""

from __future__ import annotations

import json

import pytest

from order_functions.domain.strict_json import JsonLimits, loads_object, loads_strict, nesting_depth
from order_functions.domain.validation import Fault, ValidationFailed, parse_checkout


def refused(body: bytes, limits: JsonLimits | None = None) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        loads_strict(body, limits or JsonLimits())
    assert caught.value.errors and caught.value.errors[0]["field"] == "body"
    return caught.value


@pytest.mark.parametrize("body, message", [
    (b"[" * 7000 + b"]" * 7000, "nested deeper than 16"),
    (b'{"a":' * 2000 + b"1" + b"}" * 2000, "nested deeper than 16"),
    (b'{"customer_id":"a","customer_id":"b","items":[]}', "duplicate key 'customer_id'"),
    (b'{"items":[{"product_id":"P","quantity":1,"quantity":1000}]}', "duplicate key 'quantity'"),
    (b'{"quantity":' + b"9" * 5000 + b"}", "longer than 24"),
    (b'{"quantity":-' + b"9" * 30 + b"}", "longer than 24"),
    (b'{"quantity":1.' + b"0" * 40 + b"}", "longer than 24"),
    (b'{"quantity":1e400}', "too large"),
    (b'{"quantity":NaN}', "NaN is not JSON"),
    (b'{"quantity":-Infinity}', "-Infinity is not JSON"),
    (b'{"customer_id":"\\ud800"}', "unpaired surrogate"),
    (b'{"customer_id":"a\\u0000"}', "NUL"),
    (b'{"customer_id":"a"', "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'"' + b'\\"' * 7000, "not valid JSON"),
])
def test_hostile_bodies_are_malformed(body: bytes, message: str) -> None:
    problem = refused(body)
    assert problem.fault is Fault.MALFORMED and message in problem.errors[0]["message"]


def test_the_size_limit_is_too_large() -> None:
    assert refused(b" " * 20_000).fault is Fault.TOO_LARGE


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    body = json.dumps({"note": "[" * 5000, "items": [[["x"]]]}).encode()
    assert nesting_depth(body.decode(), 16) == 4
    assert nesting_depth("[" * 8000, 16) == 17  # stops once past the limit
    assert loads_strict(body)["note"] == "[" * 5000


def test_a_legitimate_checkout_parses_exactly_as_before() -> None:
    body = b'{"customer_id":"alice","items":[{"product_id":"P-1","quantity":2},{"product_id":"P-2","quantity":1}]}'
    assert loads_object(body) == json.loads(body)
    assert parse_checkout(body).customer_id == "alice"  # the strict parse is a pre-check, the model is the same


def test_paired_surrogates_and_unicode_are_fine() -> None:
    assert loads_strict('{"name":"\\ud83d\\ude00 Zoë"}'.encode()) == {"name": "😀 Zoë"}


def test_a_top_level_array_is_not_an_object() -> None:
    with pytest.raises(ValidationFailed) as caught:
        loads_object(b"[]")
    assert caught.value.title == "Malformed request"


def test_limits_are_configurable() -> None:
    assert loads_strict(b"[[[1]]]", JsonLimits(max_depth=3)) == [[[1]]]
    refused(b"[[[[1]]]]", JsonLimits(max_depth=3))
