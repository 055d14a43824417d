"""Identifier rules, matched against the whole value: `re.match` with `$` lets "alice\\n" through, `fullmatch` does not.

Each check returns a list of `{"field", "message"}` problems (empty when valid), the shape `ValidationFailed`
carries, so callers collect every problem of a request before answering. No I/O.
"""

from __future__ import annotations

import re

MAX_CUSTOMER_ID_LENGTH = 64
MAX_PRODUCT_ID_LENGTH = 64
MAX_IDEMPOTENCY_KEY_LENGTH = 255

# ASCII classes only: a look-alike letter from another script is not the same customer
CUSTOMER_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.@:-]{{0,{MAX_CUSTOMER_ID_LENGTH - 1}}}", re.ASCII)
PRODUCT_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_PRODUCT_ID_LENGTH - 1}}}", re.ASCII)
IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}", re.ASCII)
# the canonical 8-4-4-4-12 form only: uuid.UUID() also takes braces, "urn:uuid:" and no hyphens
ORDER_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)

Problems = list[dict[str, str]]


def problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _check(value: object, pattern: re.Pattern[str], field: str, message: str, max_length: int) -> Problems:
    if not isinstance(value, str):
        return [problem(field, "is required and must be a string")]
    # length first: never run a pattern over an attacker-sized string
    if len(value) > max_length or pattern.fullmatch(value) is None:
        return [problem(field, message)]
    return []


def check_customer_id(value: object, field: str = "customer_id") -> Problems:
    return _check(
        value, CUSTOMER_ID, field, f"1-{MAX_CUSTOMER_ID_LENGTH} characters: letters, digits and _ . @ : -",
        MAX_CUSTOMER_ID_LENGTH,
    )


def check_product_id(value: object, field: str = "product_id") -> Problems:
    return _check(
        value, PRODUCT_ID, field, f"a product id (letters, digits, _ . -; up to {MAX_PRODUCT_ID_LENGTH})",
        MAX_PRODUCT_ID_LENGTH,
    )


def check_idempotency_key(value: object, field: str = "Idempotency-Key") -> Problems:
    return _check(
        value, IDEMPOTENCY_KEY, field,
        f"1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters without spaces", MAX_IDEMPOTENCY_KEY_LENGTH,
    )


def check_order_id(value: object, field: str = "order_id") -> Problems:
    return _check(value, ORDER_ID, field, "must be a UUID (8-4-4-4-12 hexadecimal digits)", 36)


def is_customer_id(value: object) -> bool:
    return not check_customer_id(value)


def is_product_id(value: object) -> bool:
    return not check_product_id(value)
