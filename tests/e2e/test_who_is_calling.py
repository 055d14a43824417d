"""Issue 11 over the real HTTP stack: the local Functions host serving the app, real inventory (with its caller
check), real PostgreSQL, tokens from the real local issuer. Every refusal is problem+json and writes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import function_app
from devstack.functions_host import FunctionsHost
from devstack.identity.settings import ORDERS_AUDIENCE
from order_functions.interface.app import build_app
from order_functions.interface.auth import ANONYMOUS_ROUTES
from tests.support.identity import bearer, issuer
from tests.support.inventory import InventoryHarness
from tests.support.orders import OrderHarness, new_key, order_app

JSON = "application/json"
PROBLEM = "application/problem+json"


class Api:
    def __init__(self, base: str, http: aiohttp.ClientSession, orders: OrderHarness) -> None:
        self.base = base
        self.http = http
        self.orders = orders

    async def call(self, method: str, path: str, *, who: str | None = "alice", roles: tuple[str, ...] = (),
                   headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        sent = {**(bearer(who, *roles) if who else {}), **(headers or {})}
        async with self.http.request(method, f"{self.base}{path}", headers=sent, **kwargs) as resp:
            raw = await resp.read()
            body = await resp.json(content_type=None) if raw and "json" in resp.content_type else raw
            return resp.status, body, resp

    def written(self) -> tuple[int, int, int]:
        o = self.orders
        return o.count("orders"), o.count("idempotency_keys"), o.inventory.reservation_rows()


@asynccontextmanager
async def serving(inventory: InventoryHarness, orders_db_url: str, **overrides: str) -> AsyncIterator[Api]:
    async with order_app(inventory, orders_db_url, ADMIN_API_ENABLED="true", **overrides) as orders:
        host = FunctionsHost(build_app(), app_module=function_app, port=0, poll_interval_s=0.05)
        port = await host.start()
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                yield Api(f"http://127.0.0.1:{port}/api", http, orders)
        finally:
            await host.stop()


@pytest.fixture
async def api(inventory: InventoryHarness, orders_db_url: str) -> AsyncIterator[Api]:
    async with serving(inventory, orders_db_url) as served:
        yield served


def order(product: str, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {**extra, "items": [{"product_id": product, "quantity": quantity}]}


def concrete(route: str) -> str:
    return "/" + route.replace("{order_id}", str(uuid.uuid4())).replace("{*path}", "x")


def http_routes() -> list[tuple[str, str]]:
    routes = []
    for function in build_app().get_functions():
        trigger = function.get_trigger()
        if function.is_http_function() and trigger is not None:
            for method in getattr(trigger, "methods", None) or ["GET"]:
                routes.append((str(getattr(method, "value", method)), str(getattr(trigger, "route", ""))))
    return routes


def forged(**claims: Any) -> str:
    now = int(time.time())
    body = {"iss": issuer().url, "aud": ORDERS_AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600, **claims}
    key = issuer().keys.current()
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key.private_key, algorithm="RS256",
                      headers={"kid": key.kid})


def stranger_token() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    body = {"iss": issuer().url, "aud": ORDERS_AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600}
    return jwt.encode(body, other, algorithm="RS256", headers={"kid": issuer().keys.current().kid})


# ---------------------------------------------------------------------------------------------------------------
# authentication: every route but the allow-list, one challenge format
# ---------------------------------------------------------------------------------------------------------------


async def test_every_route_but_the_anonymous_ones_needs_a_token(api: Api) -> None:
    routes = http_routes()
    assert {"orders", "orders/{order_id}", "ops/chaos", "stats/bus"} <= {r for _, r in routes}
    before = api.written()
    for method, route in routes:
        if route in ANONYMOUS_ROUTES:
            continue
        status, body, resp = await api.call(method, concrete(route), who=None, json={})
        assert status == 401 and resp.content_type == PROBLEM, (method, route, status, body)
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="valerix"', (method, route)
    assert api.written() == before


@pytest.mark.parametrize("bad", [
    "not-a-jwt",
    "expired",
    "wrong-issuer",
    "wrong-audience",
    "forged-signature",
    "alg-none",
])
async def test_bad_tokens_are_401_invalid_token_and_write_nothing(api: Api, bad: str) -> None:
    product = await api.orders.inventory.new_product(5)
    value = {
        "not-a-jwt": "abc.def.ghi",
        "expired": forged(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "wrong-issuer": forged(iss="http://127.0.0.1:1/other"),
        "wrong-audience": forged(aud="api://someone-else"),
        "forged-signature": stranger_token(),
        "alg-none": jwt.encode({"sub": "alice", "iss": issuer().url, "aud": ORDERS_AUDIENCE}, "", algorithm="none"),
    }[bad]
    before = api.written()
    status, body, resp = await api.call("POST", "/orders", who=None, json=order(product),
                                        headers={"Authorization": f"Bearer {value}"})
    assert status == 401 and resp.content_type == PROBLEM and body["status"] == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert api.written() == before and api.orders.inventory.available(product) == 5


async def test_operator_routes_need_the_ops_role(api: Api) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/stats/bus", {}), ("GET", "/ops/chaos", {}),
        ("POST", "/ops/chaos", {"json": {"gremlin_enabled": True}}),
        ("GET", "/stats/latency", {}), ("GET", "/orders?customer_id=bob", {}),
    ]
    for method, path, kwargs in calls:
        status, body, resp = await api.call(method, path, who="alice", **kwargs)
        assert status == 403 and resp.content_type == PROBLEM, (path, body)
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
        status, _, _ = await api.call(method, path, who="opsy", roles=("ops",), **kwargs)
        assert status == 200, path
    await api.call("POST", "/ops/chaos", who="opsy", roles=("ops",), json={"gremlin_enabled": False})


async def test_chaos_switches_accept_only_json(api: Api) -> None:
    before = api.orders.inventory.running.chaos.settings
    for content_type, data in (("application/x-www-form-urlencoded", "gremlin_enabled=true"),
                               ("text/plain", '{"gremlin_enabled": true}'), ("multipart/form-data", "x")):
        status, body, resp = await api.call("POST", "/ops/chaos", who="opsy", roles=("ops",), data=data,
                                            headers={"Content-Type": content_type})
        assert status == 415 and resp.content_type == PROBLEM, body
    assert api.orders.inventory.running.chaos.settings == before


async def test_anonymous_health_says_ok_or_failed_and_nothing_more(api: Api) -> None:
    status, body, _ = await api.call("GET", "/health", who=None)
    assert status == 200 and body == {"status": "ok", "checks": {
        "orders_database": {"status": "ok"}, "inventory": {"status": "ok"}, "bus": {"status": "ok"}}}
    status, body, _ = await api.call("GET", "/health", who="alice")  # a customer sees no more
    assert set(body["checks"]["bus"]) == {"status"}
    status, body, _ = await api.call("GET", "/health", who="opsy", roles=("ops",))
    assert status == 200 and body["checks"]["bus"]["kind"] == "local-queue"
    assert "latency_ms" in body["checks"]["inventory"]


async def test_openapi_document_is_anonymous(api: Api) -> None:
    status, body, _resp = await api.call("GET", "/openapi.json", who=None)
    assert status == 200 and body["openapi"].startswith("3.1")
    assert body["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# ---------------------------------------------------------------------------------------------------------------
# ownership
# ---------------------------------------------------------------------------------------------------------------


async def test_the_customer_is_the_token_subject(api: Api) -> None:
    product = await api.orders.inventory.new_product(5)
    status, created, _ = await api.call("POST", "/orders", who="alice", json=order(product))
    assert status == 201 and created["customer_id"] == "alice"
    before = api.written()
    status, body, resp = await api.call("POST", "/orders", who="mallory", json=order(product, customer_id="alice"))
    assert status == 403 and resp.content_type == PROBLEM and "alice" not in str(body.get("detail"))
    assert api.written() == before and api.orders.inventory.available(product) == 4


async def test_a_customer_sees_and_cancels_only_their_own_orders(api: Api) -> None:
    product = await api.orders.inventory.new_product(5)
    _, mine, _ = await api.call("POST", "/orders", who="alice", json=order(product))
    oid = mine["order_id"]
    missing = str(uuid.uuid4())
    for path, method in ((f"/orders/{oid}", "GET"), (f"/orders/{oid}/cancel", "POST")):
        status, theirs, resp = await api.call(method, path, who="bob")
        _, absent, _ = await api.call(method, path.replace(oid, missing), who="bob")
        assert status == 404 and resp.content_type == PROBLEM
        assert {k: v for k, v in theirs.items() if k != "instance"} == {
            k: (v.replace(missing, oid) if isinstance(v, str) else v) for k, v in absent.items() if k != "instance"}
    assert api.orders.inventory.available(product) == 4  # bob's cancel released nothing
    status, listing, _ = await api.call("GET", "/orders", who="bob")
    assert status == 200 and all(o["customer_id"] == "bob" for o in listing["orders"])
    status, listing, _ = await api.call("GET", "/orders", who="alice")
    assert oid in {o["order_id"] for o in listing["orders"]}
    assert all(o["customer_id"] == "alice" for o in listing["orders"])
    status, listing, _ = await api.call("GET", "/orders", who="opsy", roles=("ops",))  # everybody's
    assert status == 200 and oid in {o["order_id"] for o in listing["orders"]}
    status, cancelled, _ = await api.call("POST", f"/orders/{oid}/cancel", who="alice")
    assert status == 200 and cancelled["status"] == "cancelled"


async def test_idempotency_keys_belong_to_the_caller(api: Api) -> None:
    product = await api.orders.inventory.new_product(5)
    key = new_key()
    _, alice, _ = await api.call("POST", "/orders", who="alice", json=order(product), headers={"Idempotency-Key": key})
    status, bob, resp = await api.call("POST", "/orders", who="bob", json=order(product, 2),
                                       headers={"Idempotency-Key": key})
    assert status == 201 and bob["order_id"] != alice["order_id"] and "Idempotent-Replayed" not in resp.headers
    status, problem, _ = await api.call("POST", "/orders", who="bob", json=order(product, 3),
                                        headers={"Idempotency-Key": key})
    assert status == 422 and problem.get("order_id") == bob["order_id"]  # only ever the caller's own order


# ---------------------------------------------------------------------------------------------------------------
# hostile input: every case of the issue is a 4xx problem and writes nothing
# ---------------------------------------------------------------------------------------------------------------

HOSTILE_BODIES = {
    "7000-deep JSON": b'{"items":' + b"[" * 7000 + b"]" * 7000 + b"}",
    "5000-digit quantity": b'{"items":[{"product_id":"P-1","quantity":' + b"9" * 5000 + b"}]}",
    "duplicate keys": b'{"customer_id":"alice","customer_id":"bob","items":[{"product_id":"P-1","quantity":1}]}',
    "duplicate quantity": b'{"items":[{"product_id":"P-1","quantity":1,"quantity":1000}]}',
    "alice with a newline": b'{"customer_id":"alice\\n","items":[{"product_id":"P-1","quantity":1}]}',
    "product with a newline": b'{"items":[{"product_id":"P-1\\n","quantity":1}]}',
    "NaN quantity": b'{"items":[{"product_id":"P-1","quantity":NaN}]}',
    "NUL in a string": b'{"items":[{"product_id":"P-1\\u0000","quantity":1}]}',
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
async def test_hostile_bodies_are_4xx_problems_and_write_nothing(api: Api, name: str) -> None:
    before = api.written()
    status, body, resp = await api.call("POST", "/orders", who="alice", data=HOSTILE_BODIES[name],
                                        headers={"Content-Type": JSON})
    assert 400 <= status < 500 and resp.content_type == PROBLEM, (status, body)
    assert body["status"] == status and body["detail"]
    assert api.written() == before


@pytest.mark.parametrize("query", [
    "limit=%C2%B2", "limit=" + "9" * 5000, "limit=0", "limit=-1", "limit=1e3", "limit=%201",
    "customer_id=alice%0A", "cursor=" + "A" * 5000, "status=lost", "surprise=1",
])
async def test_hostile_queries_are_400_problems(api: Api, query: str) -> None:
    status, body, resp = await api.call("GET", f"/orders?{query}", who="alice", roles=("ops",))
    assert status == 400 and resp.content_type == PROBLEM, (query, body)


@pytest.mark.parametrize("path", [f"/orders/{uuid.uuid4()}%0A", "/orders/{" + str(uuid.uuid4()) + "}",
                                  "/orders/" + uuid.uuid4().hex])
async def test_order_ids_are_matched_whole(api: Api, path: str) -> None:
    status, body, resp = await api.call("GET", path, who="alice")
    # 400 from the app, or a 404 from the host when the route itself does not match: never an order, never a 5xx
    assert status in (400, 404), (status, body)
    assert status == 404 or resp.content_type == PROBLEM


# ---------------------------------------------------------------------------------------------------------------
# caps and the checkout rate limit
# ---------------------------------------------------------------------------------------------------------------


async def test_an_order_over_the_caps_is_422(api: Api) -> None:
    product = await api.orders.inventory.new_product(500)
    before = api.written()
    status, body, _ = await api.call("POST", "/orders", who="alice", json=order(product, 11))
    assert status == 422 and body["errors"][0]["field"] == "items[0].quantity"
    many = {"items": [{"product_id": f"P-{n}", "quantity": 1} for n in range(21)]}
    status, body, _ = await api.call("POST", "/orders", who="alice", json=many)
    assert status == 422 and body["errors"][0]["field"] == "items"
    assert api.written() == before and api.orders.inventory.available(product) == 500


async def test_the_checkout_rate_limit_is_429_and_replays_do_not_count(
    inventory: InventoryHarness, orders_db_url: str
) -> None:
    async with serving(inventory, orders_db_url, CHECKOUT_RATE_PER_MINUTE="1", CHECKOUT_RATE_BURST="2") as api:
        product = await api.orders.inventory.new_product(50)
        key = new_key()
        status, first, _ = await api.call("POST", "/orders", who="carol", json=order(product),
                                          headers={"Idempotency-Key": key})
        assert status == 201
        for _ in range(3):  # replays: answered, not counted
            status, again, resp = await api.call("POST", "/orders", who="carol", json=order(product),
                                                 headers={"Idempotency-Key": key})
            assert status == 201 and again["order_id"] == first["order_id"]
        status, _, _ = await api.call("POST", "/orders", who="carol", json=order(product))
        assert status == 201  # the second slot of the burst
        before = api.written()
        status, _body, resp = await api.call("POST", "/orders", who="carol", json=order(product))
        assert status == 429 and resp.content_type == PROBLEM and int(resp.headers["Retry-After"]) >= 1
        assert api.written() == before
        status, again, _ = await api.call("POST", "/orders", who="carol", json=order(product),
                                          headers={"Idempotency-Key": key})
        assert status == 201 and again["order_id"] == first["order_id"]  # a replay still answers when limited
        status, _, _ = await api.call("POST", "/orders", who="dave", json=order(product))
        assert status == 201  # per customer


# ---------------------------------------------------------------------------------------------------------------
# the inventory authenticates the Order Service; its refusal is "unavailable", never a rejection
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["not-an-allowed-caller", "no-credential"])
async def test_an_inventory_refusing_our_credential_leaves_the_order_pending(
    inventory: InventoryHarness, orders_db_url: str, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """The session inventory admits only `valerix-order-service`. Calling as another (validly signed) identity
    is PERMISSION_DENIED, calling with no token UNAUTHENTICATED: both mean "inventory unavailable"."""
    product = await inventory.new_product(5)
    if case == "not-an-allowed-caller":
        monkeypatch.setattr(issuer(), "clients", issuer().clients | {"some-other-service"})
        overrides = {"INVENTORY_AUTH_CLIENT_ID": "some-other-service"}
    else:
        overrides = {"INVENTORY_AUTH_AUDIENCE": ""}
    async with serving(inventory, orders_db_url, INVENTORY_TIMEOUT_SECONDS="0.5", **overrides) as api:
        before = api.orders.count("orders")
        status, body, resp = await api.call("POST", "/orders", who="alice", json=order(product))
        # never "rejected": either the order waits for the inventory (202) or nothing was taken (503)
        assert (status == 202 and body["status"] == "pending") or (status == 503 and resp.content_type == PROBLEM)
        assert status == 202 or api.orders.count("orders") == before
        rows = api.orders.sql("SELECT status FROM orders WHERE customer_id = 'alice' AND items::text LIKE %s",
                              f"%{product}%")
        assert all(r[0] == "pending" for r in rows)
        assert inventory.available(product) == 5


async def test_without_token_settings_nothing_gets_in(inventory: InventoryHarness, orders_db_url: str) -> None:
    """No setting switches validation off: an app missing AUTH_ISSUER refuses every token, and still probes."""
    async with serving(inventory, orders_db_url, AUTH_ISSUER="") as api:
        product = await api.orders.inventory.new_product(5)
        before = api.written()
        status, _, resp = await api.call("POST", "/orders", who="alice", roles=("ops",), json=order(product))
        assert status == 401 and resp.content_type == PROBLEM
        status, body, _ = await api.call("GET", "/health", who="alice", roles=("ops",))
        assert status == 200 and set(body["checks"]["inventory"]) == {"status"}
        assert api.written() == before


async def test_only_operations_ship_an_order(api: Api) -> None:
    """The customer owns the order but shipping is the warehouse's step: `403` for them, nothing moves."""
    product = await api.orders.inventory.new_product(3)
    status, placed, _ = await api.call("POST", "/orders", who="alice", json=order(product))
    assert status == 201 and placed["status"] == "confirmed"
    oid = placed["order_id"]
    status, body, resp = await api.call("POST", f"/orders/{oid}/ship", who="alice")
    assert status == 403 and resp.content_type == PROBLEM, body
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    _, still, _ = await api.call("GET", f"/orders/{oid}", who="alice")
    assert still["status"] == "confirmed"
    status, shipped, _ = await api.call("POST", f"/orders/{oid}/ship", who="opsy", roles=("ops",))
    assert status == 200 and shipped["status"] == "shipped" and shipped["message"]
    status, _, _ = await api.call("POST", f"/orders/{oid}/cancel", who="alice")
    assert status == 409  # the stock has left the warehouse
    assert api.orders.inventory.available(product) == 2
