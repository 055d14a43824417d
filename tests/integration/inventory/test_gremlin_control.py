"""The Gremlin's control channel and its shared `every:N` pattern, against real gRPC servers on one database."""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from inventory_service.handlers import ADMIN_TOKEN_METADATA
from inventory_service.middleware.chaos import Chaos, ChaosSettings
from inventory_service.server import start_inventory
from protos import inventory_pb2 as pb
from protos import inventory_stub
from tests.support.inventory import (
    ADMIN_TOKEN,
    inventory_config,
    inventory_process_env,
    order_service_channel,
    spawn_inventory,
    wait_serving,
)

ADMIN = ((ADMIN_TOKEN_METADATA, ADMIN_TOKEN),)


async def test_control_calls_are_not_delayed_and_chaos_off_acts_at_once(inventory_db_url: str) -> None:
    chaos = Chaos(ChaosSettings(gremlin_enabled=True, min_delay_s=3.0, max_delay_s=3.0))
    running = await start_inventory(inventory_config(inventory_db_url), chaos)
    try:
        async with order_service_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            stub = inventory_stub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as held:  # the Gremlin is really on for ordinary calls
                await stub.ListProducts(pb.ListProductsRequest(), timeout=1.0)
            assert held.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

            # a 1 s deadline against a 3 s Gremlin: each of these answers only because it is not held
            seen = await stub.GetChaos(pb.GetChaosRequest(), metadata=ADMIN, timeout=1.0)
            assert seen.gremlin_enabled and seen.gremlin_min_delay_s == 3.0
            restocked = await stub.Restock(pb.RestockRequest(product_id="CTRL-1", quantity=4, name="Control",
                                                             price_cents=100), metadata=ADMIN, timeout=1.0)
            assert restocked.product_id == "CTRL-1"
            off = await stub.SetChaos(pb.ChaosSettings(gremlin_enabled=False), metadata=ADMIN, timeout=1.0)
            assert not off.gremlin_enabled

            # the very next ordinary call is not held
            listed = await stub.ListProducts(pb.ListProductsRequest(), timeout=1.0)
            assert "CTRL-1" in {p.product_id for p in listed.products}
        assert chaos.delays_injected == 1
    finally:
        await running.stop(1)


async def test_every_n_pattern_holds_across_two_replicas_on_one_database(inventory_db_url: str) -> None:
    """Two inventory processes, calls alternating between them: exactly calls 3, 6, 9, 12 are held, overall."""
    chaos_env = {"GREMLIN_MODE": "true", "GREMLIN_MIN_DELAY_S": "1.5", "GREMLIN_MAX_DELAY_S": "1.5",
                 "GREMLIN_PATTERN": "every:3"}
    envs = [{**inventory_process_env(inventory_db_url), **chaos_env} for _ in range(2)]
    procs = []
    try:
        for env in envs:  # one after the other: each replica restarts the count when it starts
            procs.append(spawn_inventory(env))
            await wait_serving(f"127.0.0.1:{env['INVENTORY_GRPC_PORT']}")
        channels = [order_service_channel(f"127.0.0.1:{env['INVENTORY_GRPC_PORT']}") for env in envs]
        try:
            stubs = [inventory_stub(c) for c in channels]
            held = []
            for i in range(12):
                started = time.monotonic()
                await stubs[i % 2].ListProducts(pb.ListProductsRequest(), timeout=10)
                held.append(time.monotonic() - started >= 1.0)
        finally:
            for c in channels:
                await c.close()
        # one counter per process would hold calls 5, 6, 11 and 12 instead
        assert held == [i % 3 == 2 for i in range(12)], held
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=15) == 0
