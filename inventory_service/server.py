"""Builds and runs the grpc.aio server, its health side port, and a graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from inventory_service.config import InventoryConfig
from inventory_service.handlers import InventoryServicer
from inventory_service.health import SERVICE_NAME, HealthMonitor, health_app, start_health_site
from inventory_service.middleware.auth import caller_auth_interceptors
from inventory_service.middleware.chaos import Chaos, ChaosSettings, PgCallCounter
from inventory_service.middleware.interceptors import GremlinInterceptor
from inventory_service.relay import OutboxRelay, start_relay
from inventory_service.repository import MIGRATIONS, StockRepository
from inventory_service.startup_watchdog import StartupWatchdog
from protos import inventory_pb2, inventory_pb2_grpc
from valerix_common.bus.publishers import OpenPublisher
from valerix_common.db import make_pool
from valerix_common.migrations import apply_migrations

log = logging.getLogger(__name__)


@dataclass
class RunningInventory:
    server: grpc.aio.Server
    grpc_port: int
    health_port: int
    monitor: HealthMonitor
    chaos: Chaos
    runner: web.AppRunner
    repository: StockRepository
    relay: tuple[OutboxRelay, OpenPublisher] | None = None

    async def stop(self, grace: float) -> None:
        await self.monitor.drain()
        await self.server.stop(grace)  # in-flight calls finish, new ones are refused
        await self.runner.cleanup()
        if self.relay is not None:
            relay, publisher = self.relay
            await relay.stop()  # after the last call: its events get one more chance to leave now
            await publisher.close()
        await self.repository.pool.close()
        log.info("inventory stopped")


async def start_inventory(config: InventoryConfig, chaos: Chaos | None = None) -> RunningInventory:
    pool = make_pool(config.database_url, name="inventory", min_size=2, max_size=config.pool_size)
    await pool.open(wait=True, timeout=30)
    async with pool.connection() as conn:
        await apply_migrations(conn, MIGRATIONS)
    repository = StockRepository(pool)
    await repository.seed_if_empty()
    relay = await start_relay(config, repository)  # sends what a crashed predecessor committed, at once

    chaos = chaos or Chaos(ChaosSettings.from_env())
    counter = PgCallCounter(pool)
    await counter.start()
    chaos.share_counter(counter)  # `every:N` holds across replicas on this database
    server = grpc.aio.server(
        interceptors=[*caller_auth_interceptors(config.caller_auth), GremlinInterceptor(chaos)],
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 1 << 20)],
    )
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(
        InventoryServicer(repository, chaos, config.admin_token), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = (
        inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name,
        health.SERVICE_NAME,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(service_names, server)
    grpc_port = server.add_insecure_port(f"{config.host}:{config.grpc_port}")
    if grpc_port == 0:
        raise RuntimeError(f"cannot bind gRPC port {config.grpc_port}")

    monitor = HealthMonitor(repository, health_servicer)
    monitor.relay_report = relay[0].report if relay else None
    await monitor.check_once()
    monitor.start()
    runner = web.AppRunner(health_app(monitor), access_log=None)
    await runner.setup()
    health_port = await start_health_site(runner, config.host, config.health_port)

    await server.start()
    log.info(
        "inventory serving gRPC on :%d (%s), health on http://127.0.0.1:%d/health, gremlin=%s crash_rate=%s",
        grpc_port, SERVICE_NAME, health_port, chaos.settings.gremlin_enabled, chaos.settings.crash_rate,
    )
    return RunningInventory(server, grpc_port, health_port, monitor, chaos, runner, repository, relay)


async def serve(config: InventoryConfig) -> None:
    with StartupWatchdog(config.startup_timeout_s):
        running = await start_inventory(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutdown requested: draining for up to %ss", config.grace_seconds)
    await running.stop(config.grace_seconds)
