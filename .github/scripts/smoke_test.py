"""Post-deploy smoke test: health, then one real checkout with a bearer token, then its cancellation.

    SMOKE_BEARER_TOKEN=... python .github/scripts/smoke_test.py https://<app>.azurewebsites.net/api

Standard library only, so it runs on a bare runner. The order is cancelled at the end so a deployment's smoke
test leaves the stock as it found it. Exits non-zero, saying why, at the first thing that is wrong.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

SETTLE_TIMEOUT_S = 60.0


class SmokeFailure(Exception):
    pass


def call(method: str, url: str, token: str | None, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    return status, (json.loads(raw) if raw else None)


def token_subject(token: str) -> str:
    """The token's `sub` (read, not verified: the API verifies it); the order is placed as that customer."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def checkout(base: str, token: str | None) -> dict[str, Any]:
    status, body = call("GET", f"{base}/products", token)
    if status != 200:
        raise SmokeFailure(f"GET /products answered {status}: {body}")
    in_stock = [p for p in body["products"] if int(p.get("available", 0)) > 0]
    if not in_stock:
        raise SmokeFailure("GET /products lists nothing in stock to order")
    customer = token_subject(token) if token else "smoke-test"
    order = {"customer_id": customer, "items": [{"product_id": in_stock[0]["product_id"], "quantity": 1}]}
    status, created = call("POST", f"{base}/orders", token, order, key=f"smoke-{uuid.uuid4()}")
    if status not in (201, 202):
        raise SmokeFailure(f"POST /orders answered {status}: {created}")
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while created["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(1)
        status, created = call("GET", f"{base}/orders/{created['order_id']}", token)
        if status != 200:
            raise SmokeFailure(f"GET /orders/{{id}} answered {status}: {created}")
    if created["status"] != "confirmed":
        raise SmokeFailure(f"order {created['order_id']} ended {created['status']}, expected confirmed")
    return dict(created)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    base, token = argv[1].rstrip("/"), os.environ.get("SMOKE_BEARER_TOKEN") or None
    try:
        status, health = call("GET", f"{base}/health", None)
        if status != 200:
            raise SmokeFailure(f"GET /health answered {status}: {health}")
        print(f"health: {status} {health}")
        order = checkout(base, token)
        print(f"checkout: order {order['order_id']} {order['status']}")
        status, cancelled = call("POST", f"{base}/orders/{order['order_id']}/cancel", token)
        if status != 200 or cancelled["status"] != "cancelled":
            raise SmokeFailure(f"cancel answered {status}: {cancelled}")
        print(f"cancel: order {order['order_id']} cancelled, stock returned")
    except (SmokeFailure, urllib.error.URLError, KeyError, ValueError) as exc:
        print(f"smoke test FAILED: {exc!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
