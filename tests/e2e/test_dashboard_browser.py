"""The dashboard end to end: the real FunctionApp served in-process, real inventory and PostgreSQL, and the page in
headless Debian Chromium driven by Playwright (system executable only; never a browser download).

Also, without a browser: the page and its static files over HTTP (content types, caching, no path traversal).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from yarl import URL

import function_app
from devstack.browsers import chromium_path
from devstack.functions_host import FunctionsHost
from devstack.identity.issuer import DEV_SIGNIN_PATH
from inventory_service.middleware.chaos import ChaosSettings
from order_functions.domain.rolling_window import RollingWindow
from order_functions.interface import dashboard, http_api, http_support
from order_functions.interface.app import build_app
from tests import REPO_ROOT
from tests.support.identity import bearer, issuer
from tests.support.inventory import InventoryHarness, running_inventory
from tests.support.orders import OrderHarness, order_app
from valerix_common.embedded_pg import EmbeddedPostgres

ROOT = REPO_ROOT
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
EXPECT_MS = 10_000


class Served:
    def __init__(self, base: str, http: aiohttp.ClientSession, orders: OrderHarness) -> None:
        self.base = base
        self.http = http
        self.orders = orders

    async def get(self, path: str, *, raw: bool = False, **kwargs: Any) -> tuple[int, bytes, Any]:
        url = URL(self.base + path, encoded=True) if raw else self.base + path
        async with self.http.get(url, allow_redirects=False, **kwargs) as resp:
            return resp.status, await resp.read(), resp.headers

    async def latency(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/api/stats/latency", headers=bearer("opsy", "ops")) as resp:
            return dict(await resp.json())

    async def checkout(self, product: str, customer: str = "load") -> int:
        body = {"customer_id": customer, "items": [{"product_id": product, "quantity": 1}]}
        async with self.http.post(f"{self.base}/api/orders", json=body,
                                  headers={"Idempotency-Key": uuid.uuid4().hex, **bearer(customer)}) as resp:
            await resp.read()
            return resp.status


@pytest.fixture
def orders_db_url(own_orders_db_url: str) -> str:
    """Its own orders database (and bus): the catalogue copy there then mirrors this module's inventory only."""
    return own_orders_db_url


@pytest.fixture
async def inventory(pg_server: EmbeddedPostgres | None, orders_db_url: str) -> AsyncIterator[InventoryHarness]:
    """This module's own inventory, publishing its reservation events to the bus the served host consumes, so the
    dashboard's stock view (the catalogue copy) follows every change as it does in a running stack."""
    if pg_server is None:
        pytest.skip("needs the embedded PostgreSQL server")
    db = pg_server.create_database(f"inventory_dash_{uuid.uuid4().hex[:8]}", "inventory_svc")
    async with running_inventory(db, bus_url=orders_db_url) as harness:
        yield harness


@pytest.fixture
async def served(inventory: InventoryHarness, orders_db_url: str, monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[Served]:
    # A fresh latency window with the production settings (30 s, 1 s): samples recorded in this process by earlier
    # tests must not decide what this test sees.
    window = RollingWindow(window_s=http_support.LATENCY.window_s, threshold_s=http_support.LATENCY.threshold_s)
    monkeypatch.setattr(http_support, "LATENCY", window)
    monkeypatch.setattr(http_api, "LATENCY", window)
    inventory.running.chaos.update(ChaosSettings())
    try:
        async with order_app(inventory, orders_db_url, ADMIN_API_ENABLED="true",
                             LOCAL_BUS_DATABASE_URL=orders_db_url,
                             DASHBOARD_DEV_SIGNIN_URL=issuer().url + DEV_SIGNIN_PATH) as orders:
            host = FunctionsHost(build_app(), app_module=function_app, port=0, poll_interval_s=0.05)
            port = await host.start()
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                    yield Served(f"http://127.0.0.1:{port}", http, orders)
            finally:
                await host.stop()
    finally:
        inventory.running.chaos.update(ChaosSettings())


# ---------------------------------------------------------------------------------------------------------------
# the page and its files over HTTP
# ---------------------------------------------------------------------------------------------------------------


async def test_page_and_assets_have_types_caching_and_security_headers(served: Served) -> None:
    status, body, headers = await served.get("/api/dashboard")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"]
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    page = body.decode()
    assert dashboard.VERSION_PLACEHOLDER not in page and 'id="latency-alert"' in page
    version = dashboard.asset_version()
    assert f"dashboard/app.js?v={version}" in page and f"dashboard/app.css?v={version}" in page
    # nothing from the network but our own API (the development sign-in exchange is data, not a resource)
    page = page.replace(f'content="{issuer().url + DEV_SIGNIN_PATH}"', "")
    assert "http://" not in page and "https://" not in page

    status, _, again = await served.get("/api/dashboard", headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and again["ETag"] == headers["ETag"]

    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, body, headers = await served.get(f"/api/dashboard/{name}?v={version}")
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        status, _, headers = await served.get(f"/api/dashboard/{name}")
        assert status == 200 and headers["Cache-Control"] == "no-cache"
        status, _, _ = await served.get(f"/api/dashboard/{name}", headers={"If-None-Match": headers["ETag"]})
        assert status == 304

    status, _, headers = await served.get("/api/dashboard/")
    assert status == 308 and headers["Location"] == "../dashboard"


@pytest.mark.parametrize("path", [
    "/api/dashboard/../http_api.py",
    "/api/dashboard/..%2Fhttp_api.py",
    "/api/dashboard/%2e%2e/%2e%2e/config.py",
    "/api/dashboard/..%2F..%2F..%2Fpyproject.toml",
    "/api/dashboard/%2F%2Fetc%2Fpasswd",
    "/api/dashboard/..%5Cdashboard.py",
    "/api/dashboard/.hidden",
    "/api/dashboard/app.js%00.css",
    "/api/dashboard/index.html",
    "/api/dashboard/missing.js",
    "/api/dashboard/app.js/extra",
])
async def test_only_static_files_are_served(served: Served, path: str) -> None:
    status, body, _ = await served.get(path, raw=True)
    assert status == 404, (path, body[:200])
    assert b"import" not in body and b"root:" not in body


@pytest.mark.parametrize("name", ["", "../dashboard.py", "./app.js", "a//b", "/etc/passwd", "..", "app.js\x00",
                                  "static/../../config.py", "~/x", "app.js\\..\\x", ".git/config"])
def test_static_file_refuses_anything_outside_the_folder(name: str) -> None:
    assert dashboard.static_file(name) is None
    assert dashboard.static_file("app.js") == dashboard.STATIC_DIR / "app.js"


# ---------------------------------------------------------------------------------------------------------------
# the browser scenario
# ---------------------------------------------------------------------------------------------------------------


async def push(served: Served, product: str, count: int) -> list[int]:
    return list(await asyncio.gather(*(served.checkout(product) for _ in range(count))))


@dataclass
class Scenario:
    """One browser session against the served stack; the steps below share it."""

    served: Served
    page: Any
    expect: Any
    product: str
    load_product: str
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def inventory(self) -> InventoryHarness:
        return self.served.orders.inventory


async def _open_page(s: Scenario) -> None:
    page, expect, product = s.page, s.expect, s.product
    # signed in by the one-time code in the URL's fragment, as with the URL `make up` prints
    code = issuer().one_time_code("browser-alice", ("ops",))
    await page.goto(f"{s.served.base}/api/dashboard#signin={code}", wait_until="domcontentloaded")
    await expect(page).to_have_title("Valerix dashboard")
    await expect(page.locator("#who")).to_have_text("signed in as browser-alice (ops)")
    assert "signin" not in page.url  # the code left the address bar (and is spent anyway)
    await expect(page.get_by_label("customer")).to_have_value("browser-alice")
    await expect(page.locator(f'#co-product option[value="{product}"]')).to_have_count(1)
    await expect(page.locator(f'#products tr[data-product="{product}"] td.num').first).to_have_text("500")


async def _checkout_then_replay(s: Scenario) -> None:
    """Checkout through the form, then the replay with the same key."""
    page, expect, product = s.page, s.expect, s.product
    await page.select_option("#co-product", product)
    await page.get_by_label("quantity").fill("2")
    await page.get_by_role("button", name="Place order").click()
    await expect(page.locator("#co-status")).to_have_text("HTTP 201 — confirmed")
    await expect(page.locator("#co-message")).to_have_text("Your order is confirmed: the stock is reserved for you.")
    await expect(page.locator("#products-as-of")).not_to_be_empty()
    created = json.loads(await page.locator("#co-body").inner_text())
    order_id = created["order_id"]
    key = await page.locator("#co-key").inner_text()
    assert created["status"] == "confirmed" and created["customer_id"] == "browser-alice"
    await expect(page.locator("#co-replayed")).to_have_attribute("data-replayed", "false")
    await page.get_by_role("button", name="Send again with the same key").click()
    await expect(page.locator("#co-replayed")).to_have_attribute("data-replayed", "true")
    await expect(page.locator("#co-replayed")).to_contain_text("Idempotent-Replayed: true")
    await expect(page.locator("#co-key")).to_have_text(key)
    assert json.loads(await page.locator("#co-body").inner_text())["order_id"] == order_id
    assert s.inventory.available(product) == 498  # the replay decremented nothing

    row = page.locator(f'li.order[data-order-id="{order_id}"]')
    await expect(row).to_have_attribute("data-status", "confirmed")
    await expect(row).to_contain_text("settled in")
    await expect(row).to_contain_text("direct reply")
    await expect(page.locator(f'#products tr[data-product="{product}"] td.num').first).to_have_text("498")
    # the notifications add-on told the customer (order-events → the host's topic trigger → its API)
    await expect(page.locator("#notes-customer")).to_have_text("browser-alice")
    note = page.locator(f'#notifications li.notification[data-order-id="{order_id}"]')
    await expect(note).to_have_attribute("data-type", "order.confirmed")
    await expect(note).to_contain_text("is confirmed")
    await expect(page.locator("#budget-note")).to_contain_text("within 2 s")


async def _all_green(s: Scenario) -> None:
    """The dependencies and the alert, green with words."""
    page, expect = s.page, s.expect
    await expect(page.locator("#health-overall")).to_have_attribute("data-ok", "true")
    for check in ("orders_database", "inventory", "bus"):
        await expect(page.locator(f'li.check[data-check="{check}"]')).to_contain_text("OK")
    await expect(page.locator("#latency-alert")).to_have_attribute("data-state", "OK")
    await expect(page.locator("#latency-state")).to_have_text("OK")
    await expect(page.locator("#chaos-state")).to_have_attribute("data-gremlin", "off")
    await page.screenshot(path=str(SCREENSHOTS / "dashboard-ok.png"), full_page=True)


async def _cancel_from_its_row(s: Scenario) -> None:
    """A second order, cancelled from its row."""
    page, expect = s.page, s.expect
    await page.get_by_role("button", name="Place order").click()
    await expect(page.locator("#co-status")).to_have_text("HTTP 201 — confirmed")
    second = json.loads(await page.locator("#co-body").inner_text())["order_id"]
    second_row = page.locator(f'li.order[data-order-id="{second}"]')
    await second_row.get_by_role("button", name=re.compile("Cancel order")).click()
    await expect(second_row).to_have_attribute("data-status", "cancelled")
    await expect(page.locator("#orders-note")).to_contain_text("HTTP 200")


async def _gremlin_on_from_the_page(s: Scenario) -> None:
    """The Gremlin on through the page's switches: every inventory call held 1.5 s (deadline 2 s)."""
    page, expect = s.page, s.expect
    await page.get_by_label("min delay (s)").fill("1.5")
    await page.get_by_label("max delay (s)").fill("1.5")
    await page.get_by_label("pattern").fill("random")
    await page.get_by_label("crash rate (0–1)").fill("0")
    await page.get_by_role("switch", name=re.compile("Gremlin")).check()
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("#chaos-state")).to_have_attribute("data-gremlin", "on")
    await expect(page.locator("#chaos-state")).to_contain_text("Gremlin ON: 1.5–1.5 s")
    assert s.inventory.running.chaos.settings == ChaosSettings(
        gremlin_enabled=True, min_delay_s=1.5, max_delay_s=1.5, pattern="random", crash_rate=0.0
    )


async def _alert_turns_red(s: Scenario) -> None:
    """Slow traffic until the 30 s average is well above 1 s (bounded), then the page must turn red."""
    page, expect = s.page, s.expect
    stats = await s.served.latency()
    for _ in range(8):
        statuses = await push(s.served, s.load_product, 16)
        assert set(statuses) <= {201, 202}, statuses
        stats = await s.served.latency()
        if stats["average_ms"] is not None and stats["average_ms"] > 1200:
            break
    assert stats["state"] == "SLOW", stats
    s.report["slow"] = stats
    await expect(page.locator("#latency-alert")).to_have_attribute("data-state", "SLOW")
    await expect(page.locator("#latency-state")).to_have_text("SLOW")
    await expect(page.locator("#latency-text")).to_contain_text("above 1.00 s")
    await page.screenshot(path=str(SCREENSHOTS / "dashboard-slow.png"), full_page=True)


async def _chaos_off_and_green_again(s: Scenario) -> None:
    """Gremlin off from the page; fast traffic pulls the average under 1 s → green again."""
    page, expect = s.page, s.expect
    await page.get_by_role("button", name="All chaos off").click()
    await expect(page.locator("#chaos-state")).to_have_attribute("data-gremlin", "off")
    assert s.inventory.running.chaos.settings.gremlin_enabled is False
    # the Gremlin's backlog (late calls, VerifyOrders, their events) runs in this same process: let it drain first
    for _ in range(60):  # bounded: 15 s
        if s.served.orders.count("orders WHERE status = 'pending'") == 0:
            break
        await asyncio.sleep(0.25)
    for _ in range(15):
        statuses = await push(s.served, s.load_product, 20)
        assert set(statuses) == {201}, statuses
        stats = await s.served.latency()
        if stats["state"] == "OK":
            break
    assert stats["state"] == "OK", stats
    s.report["recovered"] = stats
    await expect(page.locator("#latency-alert")).to_have_attribute("data-state", "OK")
    await expect(page.locator("#latency-state")).to_have_text("OK")


async def _on_a_phone(s: Scenario, browser: Any) -> None:
    """Phone-sized screen."""
    expect = s.expect
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                      is_mobile=True, has_touch=True)
    mobile = await phone.new_page()
    phone_code = issuer().one_time_code("phone-bob", ("ops",))
    await mobile.goto(f"{s.served.base}/api/dashboard#signin={phone_code}", wait_until="domcontentloaded")
    await expect(mobile.locator("#latency-alert")).to_have_attribute("data-state", "OK")
    await expect(mobile.locator("li.order")).to_have_count(25)  # the 25 most recent (load included)
    await expect(mobile.locator("#health-overall")).to_have_attribute("data-ok", "true")
    overflow = await mobile.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways on a phone by {overflow}px"
    await mobile.screenshot(path=str(SCREENSHOTS / "dashboard-mobile.png"),  # what a 390x844 phone shows
                            clip={"x": 0, "y": 0, "width": 390, "height": 844})
    await mobile.locator("#orders-h").scroll_into_view_if_needed()
    await mobile.screenshot(path=str(SCREENSHOTS / "dashboard-mobile-orders.png"))
    await phone.close()


def _watch(page: Any, served: Served) -> tuple[list[str], list[str]]:
    """Errors the page reports, and requests that leave our own origin."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    outside: list[str] = []
    signin = issuer().url + DEV_SIGNIN_PATH  # the one request elsewhere: the development sign-in
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(served.base) and r.url != signin else None)
    return problems, outside


@pytest.mark.browser
@pytest.mark.timeout(120)
async def test_dashboard_in_chromium_alert_goes_red_under_the_gremlin_and_back(served: Served) -> None:
    if chromium_path() is None:
        pytest.skip("no /usr/bin/chromium: run `python -m devstack.browsers ensure` (Debian chromium, needs root)")
    playwright_api = pytest.importorskip("playwright.async_api")
    expect = playwright_api.expect
    expect.set_options(timeout=EXPECT_MS)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    inventory = served.orders.inventory
    product = await inventory.new_product(500, prefix="DASH")
    load_product = await inventory.new_product(5000, prefix="LOAD")

    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 1000})
            page = await context.new_page()
            page.set_default_timeout(EXPECT_MS)
            problems, outside = _watch(page, served)
            scenario = Scenario(served, page, expect, product, load_product)
            for step in (_open_page, _checkout_then_replay, _all_green, _cancel_from_its_row,
                         _gremlin_on_from_the_page, _alert_turns_red, _chaos_off_and_green_again):
                await step(scenario)
            await _on_a_phone(scenario, browser)
            assert not problems, problems
            assert not outside, outside
        finally:
            await browser.close()
    report = scenario.report
    (SCREENSHOTS / "dashboard-latency.json").write_text(json.dumps(report, indent=2))
    print("latency under the Gremlin:", report["slow"], "after:", report["recovered"],
          f"({time.monotonic() - started:.0f} s)")  # a figure, not a check: the test's timeout bounds it


async def test_the_development_sign_in_is_one_time_and_loopback_only(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange = issuer().url + DEV_SIGNIN_PATH
    status, body, headers = await served.get("/api/dashboard")
    assert f'name="valerix-dev-signin" content="{exchange}"' in body.decode()
    assert f"connect-src 'self' {issuer().url};" in headers["Content-Security-Policy"]
    code = issuer().one_time_code("browser-carol", ("ops",))
    origin = {"Origin": served.base}
    async with served.http.post(exchange, data={"code": code}, headers=origin) as resp:
        answer = await resp.json()
        assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == served.base
    status, _, _ = await served.get("/api/stats/bus", headers={"Authorization": f"Bearer {answer['access_token']}"})
    assert status == 200 and answer["subject"] == "browser-carol" and answer["expires_in"] <= 8 * 3600
    async with served.http.post(exchange, data={"code": code}, headers=origin) as resp:
        assert resp.status == 400  # spent
    async with served.http.post(exchange, data={"code": issuer().one_time_code("x", ttl_s=-1)}) as resp:
        assert resp.status == 400  # expired
    monkeypatch.setenv("DASHBOARD_DEV_SIGNIN_URL", "https://issuer.example/dev/signin")  # never honoured remotely
    status, body, headers = await served.get("/api/dashboard")
    assert 'name="valerix-dev-signin" content=""' in body.decode()
    assert "connect-src 'self';" in headers["Content-Security-Policy"]


# ---------------------------------------------------------------------------------------------------------------
# Entra ID sign-in (MSAL.js) as configured in Azure
# ---------------------------------------------------------------------------------------------------------------

ENTRA_TENANT = "00000000-0000-0000-0000-0000000000aa"
ENTRA_AUTHORITY = f"https://login.microsoftonline.com/{ENTRA_TENANT}"
ENTRA_CLIENT_ID = "00000000-0000-0000-0000-0000000000d1"
ENTRA_SCOPE = "api://valerix-orders/access_as_user"


def entra_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_SIGNIN_CLIENT_ID", ENTRA_CLIENT_ID)
    monkeypatch.setenv("DASHBOARD_SIGNIN_AUTHORITY", ENTRA_AUTHORITY)
    monkeypatch.setenv("DASHBOARD_SIGNIN_SCOPE", ENTRA_SCOPE)


async def test_in_entra_mode_the_page_carries_the_sign_in_settings_and_allows_only_the_authority(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    entra_settings(monkeypatch)
    status, body, headers = await served.get("/api/dashboard")
    page = body.decode()
    assert status == 200
    assert f'name="valerix-signin-client-id" content="{ENTRA_CLIENT_ID}"' in page
    assert f'name="valerix-signin-authority" content="{ENTRA_AUTHORITY}"' in page
    assert f'name="valerix-signin-scope" content="{ENTRA_SCOPE}"' in page
    assert 'name="valerix-dev-signin" content=""' in page  # no development shortcut next to a real sign-in
    assert "connect-src 'self' https://login.microsoftonline.com;" in headers["Content-Security-Policy"]
    msal = f"/api/dashboard/vendor/msal-browser.min.js?v={dashboard.asset_version()}"
    status, script, headers = await served.get(msal)
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert script.startswith(b"/*! @azure/msal-browser v") and headers["Cache-Control"].endswith("immutable")
    # a malformed configuration is no sign-in (never a broken redirect): what the page had without it, here the
    # development sign-in of this loopback stack
    monkeypatch.setenv("DASHBOARD_SIGNIN_AUTHORITY", "http://login.microsoftonline.com/x")
    status, body, headers = await served.get("/api/dashboard")
    assert 'name="valerix-signin-client-id" content=""' in body.decode()
    assert f'name="valerix-dev-signin" content="{issuer().url + DEV_SIGNIN_PATH}"' in body.decode()
    assert f"connect-src 'self' {issuer().url};" in headers["Content-Security-Policy"]


def entra_stand_in(seen: list[str]) -> Any:
    """Answers for login.microsoftonline.com, which this machine cannot reach: its published metadata shape for
    the tenant, and a blank page for the authorize endpoint (only the request the browser makes is checked)."""
    authorize = f"{ENTRA_AUTHORITY}/oauth2/v2.0/authorize"

    async def handle(route: Any) -> None:
        url = route.request.url
        seen.append(url)
        if "/.well-known/openid-configuration" in url:
            metadata = {
                "issuer": f"{ENTRA_AUTHORITY}/v2.0", "authorization_endpoint": authorize,
                "token_endpoint": f"{ENTRA_AUTHORITY}/oauth2/v2.0/token",
                "end_session_endpoint": f"{ENTRA_AUTHORITY}/oauth2/v2.0/logout",
                "jwks_uri": f"{ENTRA_AUTHORITY}/discovery/v2.0/keys", "response_modes_supported": ["query", "fragment"],
            }
            await route.fulfill(status=200, json=metadata, headers={"Access-Control-Allow-Origin": "*"})
        elif "/discovery/instance" in url:
            aliases = ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]
            await route.fulfill(status=200, headers={"Access-Control-Allow-Origin": "*"}, json={
                "tenant_discovery_endpoint": f"{ENTRA_AUTHORITY}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": "login.microsoftonline.com",
                              "preferred_cache": "login.windows.net", "aliases": aliases}],
            })
        elif url.startswith(authorize):
            await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>authorize</title>")
        else:
            await route.abort()

    return handle


@pytest.mark.browser
@pytest.mark.timeout(90)
async def test_in_entra_mode_chromium_loads_msal_and_signs_in_with_code_and_pkce(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chromium_path() is None:
        pytest.skip("no /usr/bin/chromium: run `python -m devstack.browsers ensure` (Debian chromium, needs root)")
    playwright_api = pytest.importorskip("playwright.async_api")
    expect = playwright_api.expect
    expect.set_options(timeout=EXPECT_MS)
    entra_settings(monkeypatch)
    seen: list[str] = []
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS, timeout=30_000)
        try:
            page = await (await browser.new_context()).new_page()
            problems, outside = _watch(page, served)
            await page.route("https://login.microsoftonline.com/**", entra_stand_in(seen))
            async with page.expect_response(re.compile(r"/api/dashboard/vendor/msal-browser\.min\.js\?v=")) as loaded:
                await page.goto(f"{served.base}/api/dashboard", wait_until="domcontentloaded")
            assert (await loaded.value).status == 200  # from this app, not a CDN
            button = page.get_by_role("button", name="Sign in with Microsoft")
            await expect(button).to_be_visible()
            await expect(page.locator("#signin-form")).to_be_hidden()
            await expect(page.locator("#who")).to_have_text("not signed in")
            assert await page.evaluate("typeof window.msal.PublicClientApplication") == "function"
            assert not outside, outside  # nothing leaves the origin before the user asks to sign in
            authorize = f"{ENTRA_AUTHORITY}/oauth2/v2.0/authorize"
            async with page.expect_request(lambda r: r.url.startswith(authorize)) as went:
                await button.click()
            query = parse_qs(urlsplit((await went.value).url).query)
            assert query["client_id"] == [ENTRA_CLIENT_ID] and query["response_type"] == ["code"]
            assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
            assert query["redirect_uri"] == [f"{served.base}/api/dashboard"]
            assert {ENTRA_SCOPE, "openid"} <= set(query["scope"][0].split()) and query["state"][0]
            assert query["response_mode"] == ["fragment"]  # the code comes back where no server sees it
            assert all(u.startswith("https://login.microsoftonline.com/") for u in outside), outside
            # not signed in yet, the page's polls are refused (401); nothing else may go wrong
            assert not [p for p in problems if "401" not in p], problems
        finally:
            await browser.close()
