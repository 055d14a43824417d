"""The Gremlin and Schrödinger's Warehouse, measured against real servers."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inventory_service.config import InventoryConfig
from inventory_service.middleware.chaos import CRASH_EXIT_CODE, Chaos, ChaosSettings
from inventory_service.server import start_inventory
from protos import inventory_pb2 as pb
from protos import inventory_stub
from tests import REPO_ROOT
from tests.support.inventory import (
    InventoryHarness,
    inventory_config,
    item,
    order_service_channel,
    reserve_request,
    spawn_inventory,
    wait_serving,
)

ROOT = REPO_ROOT


async def _timed(call: object) -> float:
    started = time.monotonic()
    await call  # type: ignore[misc]
    return time.monotonic() - started


async def test_gremlin_delays_every_call_within_bounds_but_not_health(inventory_db_url: str) -> None:
    chaos = Chaos(ChaosSettings(gremlin_enabled=True, min_delay_s=0.3, max_delay_s=0.5), seed=7)
    running = await start_inventory(inventory_config(inventory_db_url), chaos)
    try:
        async with order_service_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = inventory_stub(channel)
            delays = [await _timed(stub.ListProducts(pb.ListProductsRequest())) for _ in range(4)]
            assert all(0.3 <= d < 0.5 + 0.25 for d in delays), delays
            health = health_pb2_grpc.HealthStub(channel)
            fast = await _timed(health.Check(health_pb2.HealthCheckRequest(service="")))
            assert fast < 0.2
            assert chaos.delays_injected == 4
    finally:
        await running.stop(1)


async def test_gremlin_pattern_every_third_call_is_predictable(inventory_db_url: str) -> None:
    chaos = Chaos(ChaosSettings(gremlin_enabled=True, min_delay_s=0.4, max_delay_s=0.4, pattern="every:3"))
    running = await start_inventory(inventory_config(inventory_db_url), chaos)
    try:
        async with order_service_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = inventory_stub(channel)
            delays = [await _timed(stub.ListProducts(pb.ListProductsRequest())) for _ in range(6)]
            slow = [d >= 0.4 for d in delays]
            assert slow == [False, False, True, False, False, True], delays
    finally:
        await running.stop(1)


async def test_gremlin_deadline_exceeded_still_commits_the_reservation(inventory: InventoryHarness) -> None:
    """The order side's view of the Gremlin: its deadline fires, yet the late call decides the order."""
    product = await inventory.new_product(5)
    inventory.running.chaos.update(ChaosSettings(gremlin_enabled=True, min_delay_s=0.5, max_delay_s=0.5))
    try:
        order_id = str(uuid.uuid4())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await inventory.stub.ReserveStock(reserve_request([item(product, 1)], order_id), timeout=0.2)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        inventory.running.chaos.update(ChaosSettings())
    # the server-side handler still runs once the delay ends: the decision lands without a reply
    for _ in range(50):
        if inventory.available(product) == 4:
            break
        await asyncio.sleep(0.05)
    assert inventory.available(product) == 4
    replay = await inventory.stub.ReserveStock(reserve_request([item(product, 1)], order_id))
    assert replay.replayed and replay.status == pb.RESERVATION_STATUS_RESERVED
    assert inventory.available(product) == 4


async def test_schrodinger_crash_after_commit_then_replay_after_restart(
    inventory: InventoryHarness, inventory_process_env: dict[str, str]
) -> None:
    product = await inventory.new_product(10)
    env = {**inventory_process_env, "SCHRODINGER_CRASH_RATE": "1"}
    target = f"127.0.0.1:{env['INVENTORY_GRPC_PORT']}"
    order_id = str(uuid.uuid4())
    proc = spawn_inventory(env)
    try:
        await wait_serving(target)
        async with order_service_channel(target) as channel:
            stub = inventory_stub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ReserveStock(reserve_request([item(product, 3)], order_id), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert proc.wait(timeout=10) == CRASH_EXIT_CODE
        # committed, never replied: the box holds a live cat
        assert inventory.available(product) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the orchestrator restarts it (crashes off this time); the replay reports the recorded outcome
    proc = spawn_inventory({**env, "SCHRODINGER_CRASH_RATE": "0"})
    try:
        await wait_serving(target)
        async with order_service_channel(target) as channel:
            stub = inventory_stub(channel)
            replay = await stub.ReserveStock(reserve_request([item(product, 3)], order_id), timeout=5)
        assert replay.status == pb.RESERVATION_STATUS_RESERVED and replay.replayed
        assert inventory.available(product) == 7
        assert inventory.conservation_holds(product)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


async def test_sigterm_drains_in_flight_calls(
    inventory: InventoryHarness, inventory_process_env: dict[str, str]
) -> None:
    product = await inventory.new_product(10)
    env = {**inventory_process_env, "GREMLIN_MODE": "true", "GREMLIN_MIN_DELAY_S": "1", "GREMLIN_MAX_DELAY_S": "1"}
    target = f"127.0.0.1:{env['INVENTORY_GRPC_PORT']}"
    proc = spawn_inventory(env)
    try:
        await wait_serving(target)
        async with order_service_channel(target) as channel:
            stub = inventory_stub(channel)
            in_flight = asyncio.ensure_future(stub.ReserveStock(reserve_request([item(product, 2)]), timeout=10))
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            reply = await in_flight
        assert reply.status == pb.RESERVATION_STATUS_RESERVED
        assert proc.wait(timeout=15) == 0
        assert inventory.available(product) == 8
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_health_follows_the_database(pg_datadir: Path) -> None:
    """NOT_SERVING (and HTTP 503) while its database is down, SERVING again when it returns."""
    import aiohttp

    from valerix_common.embedded_pg import EmbeddedPostgres

    own = EmbeddedPostgres(pg_datadir).start()
    running = None
    try:
        config: InventoryConfig = inventory_config(own.service_url("inventory"))
        running = await start_inventory(config, Chaos(ChaosSettings()))
        running.monitor.interval = 0.2
        target = f"127.0.0.1:{running.grpc_port}"
        health_url = f"http://127.0.0.1:{running.health_port}/health"

        async def statuses() -> tuple[int, int]:
            async with order_service_channel(target) as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
            async with aiohttp.ClientSession() as http, http.get(health_url) as resp:
                return reply.status, resp.status

        assert await statuses() == (health_pb2.HealthCheckResponse.SERVING, 200)
        own.stop()
        await _eventually(statuses, (health_pb2.HealthCheckResponse.NOT_SERVING, 503))
        own.start()
        await _eventually(statuses, (health_pb2.HealthCheckResponse.SERVING, 200))
    finally:
        if running:
            await running.stop(1)
        own.destroy()


async def _eventually(probe, expected, timeout_s: float = 15) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout_s:
        last = await probe()
        if last == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"expected {expected}, last saw {last}")


