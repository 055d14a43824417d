"""Honest health: the gRPC health service and the HTTP side port report the same database check."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from grpc_health.v1 import health, health_pb2

from inventory_service.repository import StockRepository

log = logging.getLogger(__name__)

SERVICE_NAME = "valerix.inventory.v1.InventoryService"


class HealthMonitor:
    def __init__(self, repository: StockRepository, servicer: health.aio.HealthServicer, interval: float = 1.0):
        self.repository = repository
        self.servicer = servicer
        self.interval = interval
        self.healthy = False
        self.last_error = "not checked yet"
        self.checked_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._draining = False
        # the event relay's state, reported but never failing health: a bus outage must not restart the inventory
        self.relay_report: Callable[[], dict[str, Any]] | None = None

    async def check_once(self) -> bool:
        try:
            await asyncio.wait_for(self.repository.ping(), timeout=2.0)
        except Exception as exc:  # any failure means "cannot serve"; logged on every transition
            if self.healthy or self.last_error == "not checked yet":
                log.warning("inventory database check failed: %r", exc)
            self.healthy, self.last_error = False, f"{type(exc).__name__}: {exc}"[:300]
        else:
            if not self.healthy:
                log.info("inventory database reachable: SERVING")
            self.healthy, self.last_error = True, ""
        self.checked_at = time.time()
        await self._publish()
        return self.healthy

    async def _publish(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.healthy and not self._draining
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.servicer.set(name, status)

    async def _loop(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="inventory-health")

    async def drain(self) -> None:
        """Shutdown: report NOT_SERVING so load balancers stop sending before the server stops."""
        self._draining = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._publish()

    def report(self) -> dict[str, Any]:
        ok = self.healthy and not self._draining
        return {
            "status": "ok" if ok else "unavailable",
            "service": "inventory",
            "draining": self._draining,
            "checks": {
                "database": {"status": "ok" if self.healthy else "failed", "error": self.last_error},
                **({"event_relay": self.relay_report()} if self.relay_report else {}),
            },
            "checked_at": self.checked_at,
        }


def health_app(monitor: HealthMonitor) -> web.Application:
    async def handle(_: web.Request) -> web.Response:
        report = monitor.report()
        return web.json_response(report, status=200 if report["status"] == "ok" else 503)

    app = web.Application()
    app.router.add_get("/health", handle)
    return app


# Hosts that mean "every interface". asyncio sets IPV6_V6ONLY on a socket bound to `::`, so that socket alone
# refuses 127.0.0.1: probes over IPv4 (Container Apps, the compose HEALTHCHECK) would never see a healthy replica.
_ANY_HOST = {"", "::", "[::]", "*"}


async def start_health_site(runner: web.AppRunner, host: str, port: int) -> int:
    """Serves the health app on `host:port`; a wildcard host binds IPv4 and IPv6 on one port. Returns the port."""
    host = host.strip()
    if host not in _ANY_HOST:
        site = web.TCPSite(runner, host=host.strip("[]"), port=port)
        await site.start()
        return _bound_port(runner, port)
    await web.TCPSite(runner, host="0.0.0.0", port=port).start()
    bound = _bound_port(runner, port)  # port 0: IPv6 joins the port IPv4 was given
    try:
        await web.TCPSite(runner, host="::", port=bound).start()
    except OSError as exc:
        if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            raise
        log.warning("IPv6 is not available here (%s): health answers on IPv4 only", exc)
    return bound


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    ports = [address[1] for address in runner.addresses if isinstance(address, tuple)]
    return int(ports[0]) if ports else requested
