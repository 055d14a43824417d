"""The host's lifecycle: read the app's metadata once, start the HTTP front, the queue pumps and the timers, and
stop them in order (stop accepting, drain in-flight work within the timeout, close the pool, call `shutdown()`)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import azure.functions as func

from devstack.functions_host.http_front import HttpFront
from devstack.functions_host.metadata import AppFunctions, QueueFunction, load_app, read_functions
from devstack.functions_host.queue_pump import QueuePump, pump_local_queues
from devstack.functions_host.settings import (
    DEFAULT_BODY_LIMIT,
    FunctionLoadError,
    HostConfig,
    real_service_bus_configured,
)
from devstack.functions_host.timer_runner import TimerRunner

if TYPE_CHECKING:
    from valerix_common.db import Pool

log = logging.getLogger("devstack.functions_host")


class FunctionsHost:
    """Serves one FunctionApp: ``port = await host.start()``, later ``await host.stop()``."""

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        app_module: Any = None,
        host_json: Path | None = None,
        http_host: str | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        body_limit: int | None = None,
        bus_database_url: str | None = None,
        max_delivery_count: int | None = None,
        lock_duration_s: float | None = None,
        poll_interval_s: float = 0.1,
        shutdown_timeout_s: float = 10.0,
        enable_queues: bool = True,
        enable_timers: bool = True,
    ) -> None:
        from order_functions.infrastructure.local_bus import LocalBusSettings, local_bus_database_url

        self.env: Mapping[str, str] = os.environ if env is None else env
        self.app = app
        self.app_module = app_module
        if host_json is None and app_module is not None and getattr(app_module, "__file__", None):
            host_json = Path(app_module.__file__).resolve().parent / "host.json"
        self.config = HostConfig.from_host_json(host_json)
        self.http_host = http_host or self.env.get("FUNCTIONS_HTTP_HOST", "127.0.0.1")
        self.port = int(self.env.get("FUNCTIONS_HTTP_PORT", "7071")) if port is None else port
        self.body_limit = body_limit or int(self.env.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT", DEFAULT_BODY_LIMIT))
        self.bus_database_url = bus_database_url or local_bus_database_url(self.env)
        defaults = LocalBusSettings.from_env(self.env)
        self.bus_settings = replace(
            defaults,
            lock_duration_s=lock_duration_s or defaults.lock_duration_s,
            max_delivery_count=max_delivery_count or defaults.max_delivery_count,
        )
        self.poll_interval_s = poll_interval_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.enable_queues = enable_queues
        self.enable_timers = enable_timers
        self.functions: AppFunctions = read_functions(app, self.config, self.env)  # get_functions(): once, here
        self._front = HttpFront(self.functions.http, host=self.http_host, port=self.port, body_limit=self.body_limit,
                                shutdown_timeout_s=shutdown_timeout_s)
        self._pool: Pool | None = None
        self._background: list[asyncio.Task[None]] = []  # pumps and timer schedules
        self._inflight: set[asyncio.Task[Any]] = set()  # message handlers and timer invocations
        self._stopping = asyncio.Event()
        self.bound_port: int | None = None

    @classmethod
    def from_spec(cls, spec: str, **kwargs: Any) -> FunctionsHost:
        app, module = load_app(spec)
        return cls(app, app_module=module, **kwargs)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def start(self) -> int:
        """Starts HTTP, the queue pumps and the timers; returns the bound HTTP port."""
        self.bound_port = await self._front.start()
        log.info("%s", self.describe())
        try:
            if self.functions.queues and self.enable_queues:
                await self._start_queues()
            if self.enable_timers:
                for timer in self.functions.timers:
                    runner = TimerRunner(timer, self._track)
                    self._background.append(asyncio.create_task(runner.run(self._stopping), name=f"timer:{timer.name}"))
        except BaseException:
            await self.stop()
            raise
        log.info("Host started; HTTP on http://%s:%s", self.http_host, self.bound_port)
        return self.bound_port

    def _local_queue_functions(self) -> list[QueueFunction]:
        local = [q for q in self.functions.queues if not real_service_bus_configured(self.env, q.connection)]
        for q in self.functions.queues:
            if q not in local:
                log.warning(
                    "%s: a real Service Bus is configured (%s); the local runner does not poll it. "
                    "Run the real Functions host (func start) for this trigger.",
                    q.name,
                    q.connection,
                )
        if local and not self.bus_database_url:
            raise FunctionLoadError(
                "serviceBusTrigger functions need LOCAL_BUS_DATABASE_URL or ORDERS_DATABASE_URL for the local queue "
                "(or a ServiceBusConnection for the real host)"
            )
        return local

    async def _start_queues(self) -> None:
        local = self._local_queue_functions()
        if not local:
            return
        from order_functions.infrastructure.local_bus import local_queue
        from valerix_common.db import make_pool

        self._pool = make_pool(self.bus_database_url, name="local-bus", min_size=1, max_size=min(4 + len(local), 10))
        await self._pool.open(wait=False)  # connects in the background; a database that is down is retried
        pumps = [
            QueuePump(fn, local_queue(self._pool, fn.queue_name, self.bus_settings),
                      max_concurrent_calls=self.config.max_concurrent_calls,
                      max_auto_lock_renewal_s=self.config.max_auto_lock_renewal_s,
                      max_message_batch_size=self.config.max_message_batch_size,
                      poll_interval_s=self.poll_interval_s, track=self._track)
            for fn in local
        ]
        log.info(
            "Local queue: %d trigger(s), up to %d concurrent call(s) each (%d in all), lock %.0f s, "
            "max delivery count %d",
            len(local), self.config.max_concurrent_calls, self.config.max_concurrent_calls * len(local),
            self.bus_settings.lock_duration_s, self.bus_settings.max_delivery_count,
        )
        task = asyncio.create_task(pump_local_queues(self._pool, pumps, self._stopping), name="local-queue")
        self._background.append(task)

    async def stop(self) -> None:
        """Stops accepting work, lets in-flight work finish (bounded), closes the pool, calls the app's shutdown()."""
        self._stopping.set()
        deadline = time.monotonic() + self.shutdown_timeout_s
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await asyncio.gather(self._front.stop(), self._drain_inflight(deadline))
        if self._pool is not None:
            from valerix_common.local_bus import stop_notifier

            await stop_notifier(self._pool)  # the pumps' LISTEN connection, before the pool closes
            await self._pool.close()
            self._pool = None
        await self._call_shutdown_hook()
        log.info("Host stopped")

    async def _drain_inflight(self, deadline: float) -> None:
        pending = set(self._inflight)
        if not pending:
            return
        log.info("Waiting for %d in-flight invocation(s)", len(pending))
        _, still = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
        for task in still:
            task.cancel()  # message handlers abandon their message when cancelled
        if still:
            log.warning("Cancelled %d invocation(s) still running after %.0f s", len(still), self.shutdown_timeout_s)
            await asyncio.wait(still, timeout=2.0)

    async def _call_shutdown_hook(self) -> None:
        hook = getattr(self.app_module, "shutdown", None) if self.app_module is not None else None
        if not callable(hook):
            return
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("The app's shutdown() hook failed")

    def describe(self) -> str:
        """The start-up listing, as ``func start`` prints it (HTTP URLs use the bound port once started)."""
        lines = ["", "Functions:", ""]
        shown_host = "localhost" if self.http_host in {"127.0.0.1", "0.0.0.0", "::1", "::"} else self.http_host
        for fn in sorted(self.functions.http, key=lambda f: f.name.lower()):
            methods = ",".join(sorted(fn.methods)) if fn.methods else "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS"
            prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
            route = fn.route.template.strip("/")
            url = f"http://{shown_host}:{self.bound_port or self.port}{prefix}/{route}"
            lines += [f"        {fn.name}: [{methods}] {url}  (authLevel={fn.auth_level}, not enforced locally)", ""]
        for q in sorted(self.functions.queues, key=lambda f: f.name.lower()):
            lines += [f"        {q.name}: serviceBusTrigger (queue '{q.queue_name}', connection '{q.connection}')", ""]
        for t in sorted(self.functions.timers, key=lambda f: f.name.lower()):
            startup = ", runOnStartup" if t.run_on_startup else ""
            lines += [f"        {t.name}: timerTrigger ({t.schedule}{startup})", ""]
        return "\n".join(lines)
