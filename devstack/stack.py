"""The whole system on one machine: PostgreSQL, the inventory service (restarted on crash) and the Functions host."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from devstack.backup.timer import SnapshotTimer, backup_dir_from_env
from devstack.functions_host.banner import function_lines
from devstack.identity import ORDER_SERVICE_CLIENT_ID, LocalIssuer
from devstack.identity.issuer import DEV_SIGNIN_PATH, SIGNIN_CODE_TTL_S, TOKEN_PATH
from devstack.identity.settings import INVENTORY_AUDIENCE, ORDERS_AUDIENCE, issuer_port
from devstack.supervisor import Supervised, python_argv, wait_for
from valerix_common.embedded_pg import EmbeddedPostgres, free_port

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StackOptions:
    data_dir: Path = ROOT / ".data" / "stack"
    functions_port: int = 7071
    grpc_port: int = 50051
    inventory_health_port: int = 8081
    issuer_port: int = field(default_factory=issuer_port)  # the local token issuer (DEVSTACK_ISSUER_PORT, 7072)
    extra_env: dict[str, str] = field(default_factory=dict)
    with_functions: bool = True
    fresh: bool = False  # start from an empty database
    backup_every_s: float = 0.0  # > 0: a restore point that often while the stack runs (`make up`)
    pg_settings: dict[str, str] = field(default_factory=dict)  # postgresql.conf additions for a new embedded server


@dataclass
class Stack:
    options: StackOptions
    pg: EmbeddedPostgres | None = None
    inventory: Supervised | None = None
    functions: Supervised | None = None
    issuer: LocalIssuer | None = None
    env: dict[str, str] = field(default_factory=dict)
    backup_timer: SnapshotTimer | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.options.functions_port}/api"

    @property
    def inventory_target(self) -> str:
        return f"127.0.0.1:{self.options.grpc_port}"

    async def start(self) -> Stack:
        opts = self.options
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        inventory_url = os.environ.get("INVENTORY_DATABASE_URL", "")
        orders_url = os.environ.get("ORDERS_DATABASE_URL", "")
        bus_url = os.environ.get("LOCAL_BUS_DATABASE_URL", "")
        if not (inventory_url and orders_url):
            pg_dir = opts.data_dir / "pg"
            if opts.fresh and pg_dir.exists():
                EmbeddedPostgres(pg_dir).destroy()
            self.pg = await asyncio.to_thread(EmbeddedPostgres(pg_dir, settings=opts.pg_settings).start)
            inventory_url = inventory_url or self.pg.service_url("inventory")
            orders_url = orders_url or self.pg.service_url("orders")
            bus_url = bus_url or self.pg.service_url("localbus")
        admin_token = os.environ.get("INVENTORY_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        self.issuer = _start_issuer(opts.issuer_port)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "INVENTORY_DATABASE_URL": inventory_url,
            "ORDERS_DATABASE_URL": orders_url,
            "LOCAL_BUS_DATABASE_URL": bus_url or orders_url,
            "INVENTORY_GRPC_PORT": str(opts.grpc_port),
            "INVENTORY_HEALTH_PORT": str(opts.inventory_health_port),
            "INVENTORY_BIND_HOST": "127.0.0.1",
            "INVENTORY_GRPC_TARGET": self.inventory_target,
            "INVENTORY_ADMIN_TOKEN": admin_token,
            "FUNCTIONS_HTTP_PORT": str(opts.functions_port),
            # the dashboard's chaos switches: on for the local stack only (never set in Azure)
            "ADMIN_API_ENABLED": os.environ.get("ADMIN_API_ENABLED", "true"),
            # a 5 s reconciler locally (chaos runs quiesce fast); Azure runs it every 5 minutes so Flex can idle
            "RECONCILE_SCHEDULE": os.environ.get("RECONCILE_SCHEDULE", "*/5 * * * * *"),
            # the Order Service's token settings (same names as in Azure), and the inventory's caller check:
            # only the Order Service's identity, with a token from the issuer's client-credentials endpoint
            "AUTH_ISSUER": self.issuer.url,
            "AUTH_AUDIENCE": ORDERS_AUDIENCE,
            "INVENTORY_AUTH_AUDIENCE": INVENTORY_AUDIENCE,
            "INVENTORY_ALLOWED_CALLERS": ORDER_SERVICE_CLIENT_ID,
            "INVENTORY_AUTH_TOKEN_URL": self.issuer.url + TOKEN_PATH,
            "DEVSTACK_ISSUER_URL": self.issuer.url,
            # the dashboard's development sign-in: exchanges the one-time code `make up` prints (never in Azure)
            "DASHBOARD_DEV_SIGNIN_URL": self.issuer.url + DEV_SIGNIN_PATH,
            **opts.extra_env,
        }
        os.environ["DEVSTACK_ISSUER_URL"] = self.issuer.url  # this process's tools mint for this stack's issuer
        # where `make backup` and other tools find this stack's databases (no secrets: trust auth on loopback)
        state = {k: self.env[k] for k in ("ORDERS_DATABASE_URL", "INVENTORY_DATABASE_URL", "LOCAL_BUS_DATABASE_URL")}
        (opts.data_dir / "stack.json").write_text(json.dumps(state, indent=2))
        logs = opts.data_dir / "logs"
        self.inventory = Supervised(
            "inventory", python_argv("inventory_service"), self.env, ROOT, logs / "inventory.log"
        )
        await self.inventory.start()
        await wait_for("inventory health", self._inventory_healthy, timeout_s=60)
        if opts.with_functions:
            self.functions = Supervised(
                "functions", python_argv("devstack.functions_host"), self.env, ROOT, logs / "functions.log"
            )
            await self.functions.start()
            await wait_for("functions host", self._functions_healthy, timeout_s=60)
        if opts.backup_every_s > 0:
            urls = {"orders": orders_url, "inventory": inventory_url}
            self.backup_timer = SnapshotTimer(urls, backup_dir_from_env(), opts.backup_every_s)
            self.backup_timer.start()
        return self

    async def stop(self) -> None:
        if self.backup_timer:
            await self.backup_timer.stop()
        for child in (self.functions, self.inventory):
            if child:
                await child.stop()
        if self.pg:
            await asyncio.to_thread(self.pg.stop)
        if self.issuer:
            await asyncio.to_thread(self.issuer.stop)

    async def _inventory_healthy(self) -> bool:
        return await http_ok(f"http://127.0.0.1:{self.options.inventory_health_port}/health")

    async def _functions_healthy(self) -> bool:
        return await http_ok(f"{self.api_base}/health")

    def describe(self) -> str:
        lines = [
            "",
            "Valerix is running. Ctrl-C stops everything.",
            "",
            "Functions:",
        ]
        if self.options.with_functions:
            base = self.api_base.replace("127.0.0.1", "localhost")
            signin = f"#signin={self.issuer.one_time_code(DASHBOARD_USER, ('ops',))}" if self.issuer else ""
            lines += [
                f"        dashboard:              GET      {base}/dashboard{signin}",
                f"                                (signs you in as {DASHBOARD_USER} with the ops role: one use, within"
                f" {SIGNIN_CODE_TTL_S // 60} min; development only)",
                *(f"        {line}" for line in function_lines(base, self.env, skip=("dashboard", "dashboard_asset"))),
            ]
        lines += [
            "",
            f"Inventory gRPC:   {self.inventory_target} (health: http://127.0.0.1:{self.options.inventory_health_port}/health)",
            f"PostgreSQL:       {self.env.get('INVENTORY_DATABASE_URL', '').rsplit('/', 1)[0]}",
            f"Token issuer:     {self.issuer.url if self.issuer else '-'}  (a token: "
            f"{_token_command(self.issuer)} alice [--role ops]; the token is the last line)",
            f"                  e.g. TOKEN=$({_token_command(self.issuer)} alice | tail -1); "
            f"curl -H \"Authorization: Bearer $TOKEN\" {self.api_base}/orders",
            f"Logs:             {self.options.data_dir / 'logs'}",
            f"Chaos:            GREMLIN_MODE={self.env.get('GREMLIN_MODE', 'false')} "
            f"SCHRODINGER_CRASH_RATE={self.env.get('SCHRODINGER_CRASH_RATE', '0')}",
            "Backups:          " + (self.backup_timer.describe() if self.backup_timer else "timer off"),
        ]
        return "\n".join(lines)


DASHBOARD_USER = "dashboard-user"


def _start_issuer(port: int) -> LocalIssuer:
    try:
        return LocalIssuer(port=port).start()
    except OSError as exc:  # taken (another stack?): any port works, the children are told which
        log.warning("token issuer port %d unavailable (%s): using a free one", port, exc)
        return LocalIssuer(port=0).start()


def _token_command(issuer: LocalIssuer | None) -> str:
    prefix = "" if issuer is None or issuer.port == issuer_port() else f"DEVSTACK_ISSUER_URL={issuer.url} "
    return f"{prefix}.venv/bin/python -m devstack token"


async def http_ok(url: str) -> bool:
    """True when `url` answers 200 within 2 s."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http, http.get(url) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


Check = Callable[[], Awaitable[bool]]
__all__ = ["Stack", "StackOptions", "free_port"]
