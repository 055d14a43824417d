"""`python -m devstack.identity.bench`: what token validation and strict JSON parsing cost per request (figures only).

Runs the real local issuer on loopback (keys in a temporary directory) and times the validator with its JWKS
cached, then the strict body parser against `json.loads` on a 20-line checkout and on hostile bodies.
"""

from __future__ import annotations

import json
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from devstack.identity import KeyStore, LocalIssuer
from devstack.identity.settings import ORDERS_AUDIENCE
from order_functions.domain.strict_json import loads_strict
from order_functions.domain.validation import ValidationFailed
from valerix_common.jwt_auth import JwtSettings, JwtValidator


def per_call_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6


def refusing(body: bytes) -> Callable[[], object]:
    def run() -> object:
        try:
            return loads_strict(body)
        except ValidationFailed as exc:
            return exc

    return run


def main() -> None:
    with tempfile.TemporaryDirectory() as keys, LocalIssuer(KeyStore(Path(keys))) as issuer:
        validator = JwtValidator(JwtSettings(issuer.url, (ORDERS_AUDIENCE,)))
        token = issuer.minter.mint("alice", ORDERS_AUDIENCE, roles=("ops",))
        validator.validate(token)  # fetch the JWKS once
        cost = per_call_us(lambda: validator.validate(token), 500)
        print(f"validate RS256-2048, JWKS cached:          {cost:8.0f} us")
    items = [{"product_id": f"P-{n}", "quantity": 2} for n in range(20)]
    body = json.dumps({"customer_id": "alice", "items": items}).encode()
    print(f"json.loads, 20-line checkout ({len(body)} B):     {per_call_us(lambda: json.loads(body), 2000):8.1f} us")
    print(f"loads_strict, same body:                   {per_call_us(lambda: loads_strict(body), 2000):8.1f} us")
    hostile = {
        "8,000-deep nesting (refused)": b"[" * 8000 + b"]" * 8000,
        "16 KiB string of escaped quotes (valid)": b'{"s":"' + b'\\"' * 8000 + b'"}',
        "5,000-digit quantity (refused)": b'{"quantity":' + b"9" * 5000 + b"}",
    }
    for name, hostile_body in hostile.items():
        print(f"loads_strict, {name + ':':42s}{per_call_us(refusing(hostile_body), 200):8.1f} us")


if __name__ == "__main__":
    main()
