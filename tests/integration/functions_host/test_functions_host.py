"""The local Functions runner: real HTTP on loopback against a sample FunctionApp, real PostgreSQL for the queue."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack.functions_host import (
    CompiledRoute,
    FunctionLoadError,
    FunctionsHost,
    HostConfig,
    TimerSchedule,
    resolve_app_settings,
)
from order_functions.infrastructure.local_queue import LocalQueue
from order_functions.infrastructure.messaging import OutgoingMessage
from tests import REPO_ROOT
from tests.integration.functions_host import sample_app
from valerix_common.db import make_pool
from valerix_common.embedded_pg import EmbeddedPostgres

QUEUE = "verify-order"
MAX_DELIVERY_COUNT = 3
LOCK_DURATION_S = 1.0


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ServiceBusConnection")}
    env.pop("FUNCTIONS_HTTP_PORT", None)
    return {**env, "FH_SLOW_SCHEDULE": "*/1 * * * * *", **extra}


async def wait_until(
    predicate: Callable[[], Awaitable[bool]] | Callable[[], bool], timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / 0.05) + 1):
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def host_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fh") / "host.json"
    path.write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "http": {"routePrefix": "api"},
                    "serviceBus": {"maxConcurrentCalls": 4, "maxAutoLockRenewalDuration": "00:00:30"},
                },
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def bus_url(pg_server: EmbeddedPostgres | None) -> str:
    if pg_server is None:
        return os.environ["ORDERS_DATABASE_URL"]
    return pg_server.create_database(f"fhost_{uuid.uuid4().hex[:8]}", "fhost_svc")


@pytest.fixture(scope="module")
async def host(bus_url: str, host_json: Path) -> AsyncIterator[FunctionsHost]:
    runner = FunctionsHost(
        sample_app.app,
        app_module=sample_app,
        host_json=host_json,
        port=0,
        env=_env(),
        bus_database_url=bus_url,
        max_delivery_count=MAX_DELIVERY_COUNT,
        lock_duration_s=LOCK_DURATION_S,
        poll_interval_s=0.05,
        shutdown_timeout_s=5.0,
    )
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


@pytest.fixture(scope="module")
async def base(host: FunctionsHost) -> str:
    return f"http://127.0.0.1:{host.bound_port}/api"


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture(scope="module")
async def queue(bus_url: str, host: FunctionsHost) -> AsyncIterator[LocalQueue]:
    pool = make_pool(bus_url, name="fh-test-sender", min_size=1, max_size=2, mode="password")
    await pool.open(wait=True)
    # The same queue options as the runner, so dead-lettering happens at the same count in both.
    sender = LocalQueue(pool, QUEUE, lock_duration_s=LOCK_DURATION_S, max_delivery_count=MAX_DELIVERY_COUNT)
    try:
        yield sender
    finally:
        await pool.close()


# --- HTTP ----------------------------------------------------------------------------------------------------------


async def test_guid_route_with_route_and_query_params(base: str, http: aiohttp.ClientSession) -> None:
    item = str(uuid.uuid4())
    async with http.get(f"{base}/items/{item}", params=[("q", "a"), ("q", "b")]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        payload = await resp.json()
    assert payload["item_id"] == item
    assert payload["q"] == "a,b"  # repeated query keys are joined, as the host does
    assert payload["url"].startswith(f"{base}/items/{item}?")
    # ASP.NET routing: case-insensitive literals, trailing slash allowed
    async with http.get(f"{base.replace('/api', '/API')}/Items/{item.upper()}/") as resp:
        assert resp.status == 200
        assert (await resp.json())["item_id"] == item.upper()


@pytest.mark.parametrize("path", ["items/not-a-guid", "items/1234", "items", "nope", "items/{}/extra"])
async def test_unknown_routes_and_failed_constraints_are_empty_404(
    base: str, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(f"{base}/{path.format(uuid.uuid4())}") as resp:
        assert resp.status == 404
        assert await resp.read() == b""


async def test_route_prefix_is_required(base: str, http: aiohttp.ClientSession) -> None:
    async with http.get(base.replace("/api", f"/items/{uuid.uuid4()}")) as resp:
        assert resp.status == 404


async def test_post_round_trips_status_headers_and_body(base: str, http: aiohttp.ClientSession) -> None:
    body = {"customer_id": "c-1", "items": [{"product_id": "p", "quantity": 2}]}
    async with http.post(f"{base}/echo", json=body, headers={"X-Test": "hello"}) as resp:
        assert resp.status == 201
        assert resp.headers["X-Custom"] == "yes"
        assert resp.headers["Location"] == "/api/echo/1"
        assert resp.headers["Retry-After"] == "3"
        assert resp.headers["Content-Type"] == "application/json"
        payload = await resp.json()
    assert payload == {"got": body, "x_test": "hello", "method": "POST"}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
async def test_known_route_with_other_method_is_404_like_the_host(
    base: str, http: aiohttp.ClientSession, method: str
) -> None:
    async with http.request(method, f"{base}/echo") as resp:
        assert resp.status == 404  # azure-functions-host#10098: the host does not answer 405


async def test_sync_function_runs_off_the_event_loop(base: str, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{base}/sync", params={"name": "zoë"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert await resp.text() == "sync main_thread=False name=zoë"


async def test_unhandled_exception_is_500_without_details_and_logged(
    base: str, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="devstack.functions_host"):
        async with http.get(f"{base}/boom") as resp:
            assert resp.status == 500
            body = await resp.read()
    assert b"secret" not in body
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Functions.boom" in logged
    assert "RuntimeError: secret detail" in logged and "Traceback" in logged


@pytest.mark.parametrize(
    ("path", "expected"),
    [("static/a/b/c%20d.txt", "path=[a/b/c d.txt]"), ("static/x", "path=[x]"), ("static", "path=[]")],
)
async def test_catch_all_route(base: str, http: aiohttp.ClientSession, path: str, expected: str) -> None:
    async with http.get(f"{base}/{path}") as resp:
        assert resp.status == 200
        assert await resp.text() == expected


async def test_start_up_listing(host: FunctionsHost) -> None:
    listing = host.describe()
    port = host.bound_port
    assert f"get_item: [GET] http://localhost:{port}/api/items/{{item_id:guid}}" in listing
    assert f"echo: [POST] http://localhost:{port}/api/echo  (authLevel=anonymous" in listing
    assert f"boom: [GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS] http://localhost:{port}/api/boom" in listing
    assert "authLevel=function, not enforced locally" in listing
    assert "verify_order: serviceBusTrigger (queue 'verify-order'" in listing
    assert "batch_events: serviceBusTrigger (queue 'batch-events'" in listing
    assert "tick: timerTrigger (*/1 * * * * *)" in listing
    assert "slow_tick: timerTrigger (*/1 * * * * *)" in listing  # %FH_SLOW_SCHEDULE% resolved


# --- timers --------------------------------------------------------------------------------------------------------


async def test_timer_fires_every_second_without_overlap(host: FunctionsHost) -> None:
    before = len(sample_app.timer_calls)
    await asyncio.sleep(2.5)
    fired = sample_app.timer_calls[before:]
    assert 2 <= len(fired) <= 4
    assert not any(fired), "on-time ticks are not past due"
    assert sample_app.timer_state["max_active"] == 1


async def test_slow_timer_is_skipped_while_running_never_concurrent(host: FunctionsHost) -> None:
    await wait_until(lambda: len(sample_app.slow_timer_calls) >= 2, 5.0, "two runs of the slow timer")
    calls = sample_app.slow_timer_calls
    assert sample_app.slow_timer_state["max_active"] == 1
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(gap >= 1.45 for gap in gaps), gaps  # each run lasts 1.5 s; the 1 s occurrence in between is skipped


# --- Service Bus trigger from the local queue ----------------------------------------------------------------------


async def test_queue_messages_are_processed_and_completed(queue: LocalQueue) -> None:
    before = await queue.stats()
    ids = [f"ok-{uuid.uuid4()}" for _ in range(6)]
    for message_id in ids:
        await queue.send(
            OutgoingMessage(message_id=message_id, body=b'{"order_id": "x"}', application_properties={"k": "v"})
        )
    await wait_until(lambda: set(ids) <= set(sample_app.processed), 5.0, "all messages processed")

    async def settled() -> bool:
        stats = await queue.stats()
        return stats["active"] == 0 and stats["completed"] - before["completed"] >= len(ids)

    await wait_until(settled, 5.0, "all messages completed")
    assert await queue.receive() == []
    assert [(m, c) for m, c in sample_app.attempts if m in ids] == [(m, 1) for m in ids]
    msg = sample_app.deliveries[ids[0]]
    assert msg.get_body() == b'{"order_id": "x"}'
    assert msg.content_type == "application/json"
    assert msg.application_properties == {"k": "v"}
    assert msg.delivery_count == 1
    assert msg.lock_token and msg.sequence_number
    assert isinstance(msg.enqueued_time_utc, datetime) and msg.enqueued_time_utc.tzinfo is not None


async def test_failing_message_is_abandoned_redelivered_then_dead_lettered(
    queue: LocalQueue, caplog: pytest.LogCaptureFixture
) -> None:
    message_id = f"fail-{uuid.uuid4()}"
    with caplog.at_level(logging.ERROR, logger="devstack.functions_host"):
        await queue.send(OutgoingMessage(message_id=message_id, body=b"please fail"))

        async def dead_lettered() -> bool:
            return any(d["message_id"] == message_id for d in await queue.dead_letters(limit=1000))

        await wait_until(dead_lettered, 8.0, "the failing message to be dead-lettered")
    assert [c for m, c in sample_app.attempts if m == message_id] == [1, 2, 3]
    assert message_id not in sample_app.processed
    [dead] = [d for d in await queue.dead_letters(limit=1000) if d["message_id"] == message_id]
    assert dead["reason"] == "MaxDeliveryCountExceeded"
    assert (await queue.stats())["active"] == 0
    failures = [r.getMessage() for r in caplog.records if message_id in r.getMessage()]
    assert len(failures) == 3
    assert all("abandoning" in f and "failing on purpose" in f for f in failures)
    assert "delivery_count=3" in failures[-1]


async def test_a_batch_trigger_gets_lists_and_every_message_is_completed(bus_url: str, host: FunctionsHost) -> None:
    pool = make_pool(bus_url, name="fh-test-batch", min_size=1, max_size=2, mode="password")
    await pool.open(wait=True)
    try:
        sender = LocalQueue(pool, "batch-events", lock_duration_s=LOCK_DURATION_S,
                            max_delivery_count=MAX_DELIVERY_COUNT)
        ids = [f"b-{uuid.uuid4()}" for _ in range(8)]
        for message_id in ids:
            await sender.send(OutgoingMessage(message_id=message_id, body=b"{}"))

        def seen() -> list[str]:
            return [m for batch in sample_app.batches for m, _ in batch]

        await wait_until(lambda: set(ids) <= set(seen()), 5.0, "every message handed to the batch trigger")

        async def settled() -> bool:
            return (await sender.stats())["active"] == 0

        await wait_until(settled, 5.0, "the batches completed")
        assert sorted(m for m in seen() if m in ids) == sorted(ids)  # each once: completed, not redelivered
        assert all(n == 1 for batch in sample_app.batches for m, n in batch if m in ids)
    finally:
        await pool.close()


async def test_a_failing_batch_is_abandoned_together_and_its_messages_return(bus_url: str) -> None:
    from devstack.functions_host.metadata import QueueFunction, read_functions
    from devstack.functions_host.queue_pump import Outcome, QueuePump

    functions = read_functions(sample_app.build_app(), HostConfig(), _env())
    [fn] = [f for f in functions.queues if f.name == "batch_events"]
    assert not next(f for f in functions.queues if f.name == "verify_order").many
    assert fn.many
    pool = make_pool(bus_url, name="fh-test-batch-fail", min_size=1, max_size=2, mode="password")
    await pool.open(wait=True)
    try:
        await LocalQueue.ensure_schema(pool)  # no host runs on this queue: the test makes the schema itself
        q = LocalQueue(pool, f"batch-direct-{uuid.uuid4().hex[:8]}", max_delivery_count=2)
        pump = QueuePump(QueueFunction(fn.name, fn.user_function, fn.arg_name, q.queue_name, fn.connection, True), q)
        good, bad = f"good-{uuid.uuid4()}", f"bad-{uuid.uuid4()}"
        await q.send(OutgoingMessage(message_id=good, body=b"{}"))
        await q.send(OutgoingMessage(message_id=bad, body=b"fail"))
        first = await pump.deliver_once(max_messages=10)
        assert [(d.message_id, d.outcome) for d in first] == [(good, Outcome.ABANDONED), (bad, Outcome.ABANDONED)]
        assert all(isinstance(d.error, RuntimeError) for d in first)
        assert sample_app.batches[-1] == [(good, 1), (bad, 1)]  # one call with both
        second = await pump.deliver_once(max_messages=10)  # their last allowed delivery: both dead-lettered
        assert sample_app.batches[-1] == [(good, 2), (bad, 2)]
        assert {d.message_id for d in second} == {good, bad}
        assert sorted(d["message_id"] for d in await q.dead_letters()) == sorted([good, bad])
        assert await pump.deliver_once() == []
    finally:
        await pool.close()


async def test_long_running_handler_keeps_its_lock(queue: LocalQueue) -> None:
    message_id = f"slow-{uuid.uuid4()}"
    await queue.send(OutgoingMessage(message_id=message_id, body=b"slow"))
    await wait_until(lambda: message_id in sample_app.processed, 6.0, "the slow message processed")

    async def gone() -> bool:
        return (await queue.stats())["active"] == 0

    await wait_until(gone, 3.0, "the slow message completed")
    # 2.2 s of work with a 1 s lock: without renewal it would have been delivered again.
    assert [c for m, c in sample_app.attempts if m == message_id] == [1]


# --- separate hosts: shutdown, limits, the real-bus seam -----------------------------------------------------------


async def test_graceful_stop_finishes_in_flight_requests_and_calls_app_shutdown(host_json: Path) -> None:
    runner = FunctionsHost(
        sample_app.build_app(),
        app_module=sample_app,
        host_json=host_json,
        port=0,
        env=_env(),
        enable_queues=False,
        enable_timers=False,
    )
    port = await runner.start()
    calls_before = len(sample_app.shutdown_calls)
    async with aiohttp.ClientSession() as session:

        async def slow_request() -> tuple[int, str]:
            async with session.get(f"http://127.0.0.1:{port}/api/slow", params={"s": "0.6"}) as resp:
                return resp.status, await resp.text()

        request = asyncio.create_task(slow_request())
        await asyncio.sleep(0.2)
        await asyncio.wait_for(runner.stop(), 30)  # a hang guard: the in-flight request below finishes first
        assert await asyncio.wait_for(request, 3.0) == (200, "slow done")
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{port}/api/sync"):
                pass
    assert len(sample_app.shutdown_calls) == calls_before + 1


async def test_request_body_limit_is_413(host_json: Path) -> None:
    runner = FunctionsHost(
        sample_app.build_app(),
        host_json=host_json,
        port=0,
        env=_env(),
        body_limit=1024,
        enable_queues=False,
        enable_timers=False,
    )
    port = await runner.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/api/echo"
            async with session.post(url, data=b"x" * 4096) as resp:
                assert resp.status == 413
            async with session.post(url, json={"small": True}) as resp:
                assert resp.status == 201
    finally:
        await runner.stop()


async def test_real_service_bus_configured_means_no_local_polling(
    host_json: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = _env(ServiceBusConnection__fullyQualifiedNamespace="valerix.servicebus.windows.net")
    env.pop("ORDERS_DATABASE_URL", None)
    env.pop("LOCAL_BUS_DATABASE_URL", None)
    runner = FunctionsHost(sample_app.build_app(), host_json=host_json, port=0, env=env, enable_timers=False)
    with caplog.at_level(logging.WARNING, logger="devstack.functions_host"):
        await runner.start()
    try:
        assert runner._pool is None
        assert any("real Service Bus is configured" in r.getMessage() for r in caplog.records)
    finally:
        await runner.stop()


def test_get_functions_is_read_once_per_app() -> None:
    app = sample_app.build_app()
    FunctionsHost(app, env=_env(), port=0)
    with pytest.raises(ValueError, match="unique function name"):
        FunctionsHost(app, env=_env(), port=0)  # azure-functions refuses a second get_functions()


# --- metadata parsing ----------------------------------------------------------------------------------------------


def test_host_json_settings(tmp_path: Path) -> None:
    assert HostConfig.from_host_json(None) == HostConfig("api", 16, 300.0, 1000)
    path = tmp_path / "host.json"
    path.write_text(
        json.dumps(
            {
                "extensions": {
                    "http": {"routePrefix": ""},
                    "serviceBus": {"maxConcurrentCalls": 2, "maxAutoLockRenewalDuration": "1.00:00:30",
                                   "maxMessageBatchSize": 7},
                }
            }
        )
    )
    assert HostConfig.from_host_json(path) == HostConfig("", 2, 86430.0, 7)
    assert HostConfig.from_host_json(REPO_ROOT / "host.json").route_prefix == "api"


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("orders/{order_id}", "/api/orders/abc", {"order_id": "abc"}),
        ("orders/{order_id}/cancel", "/api/orders/a%2Fb/cancel", {"order_id": "a/b"}),
        ("n/{id:int}", "/api/n/-12", {"id": "-12"}),
        ("n/{id:int}", "/api/n/2147483648", None),
        ("n/{id:int?}", "/api/n", {}),
        ("n/{name:alpha}", "/api/n/abc", {"name": "abc"}),
        ("n/{name:alpha}", "/api/n/ab1", None),
        ("n/{v:length(2,3)}", "/api/n/abcd", None),
        ("n/{v:regex(^[a-z]{{2}}$)}", "/api/n/ab", {"v": "ab"}),
        ("n/{v=dflt}", "/api/n", {"v": "dflt"}),
        ("files/{name}.{ext}", "/api/files/report.pdf", {"name": "report", "ext": "pdf"}),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert CompiledRoute.compile(template, "api").match(path) == expected


@pytest.mark.parametrize("template", ["a/{*rest}/b", "a/{x?}/b", "a/{x:nosuch}", "a/{x", "a//b"])
def test_bad_route_templates_fail_at_load(template: str) -> None:
    with pytest.raises(FunctionLoadError):
        CompiledRoute.compile(template, "api")


def test_ncrontab_schedules() -> None:
    start = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert TimerSchedule("0 */5 * * * *").next_after(start) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert TimerSchedule("*/10 * * * * *").next_after(start) == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    friday_13th = TimerSchedule("0 0 0 13 * 5").next_after(start)  # NCRONTAB: day AND day-of-week
    assert (friday_13th.day, friday_13th.weekday()) == (13, 4)
    assert TimerSchedule("00:00:30").next_after(start) == datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    for bad in ("*/5 * * * *", "61 * * * * *", "nonsense"):
        with pytest.raises(FunctionLoadError):
            TimerSchedule(bad)


def test_app_setting_references() -> None:
    env: dict[str, Any] = {"SCHEDULE": "0 */2 * * * *", "Q": "verify-order"}
    assert resolve_app_settings("%SCHEDULE%", env) == "0 */2 * * * *"
    assert resolve_app_settings("prefix-%Q%", env) == "prefix-verify-order"
    with pytest.raises(FunctionLoadError, match="MISSING"):
        resolve_app_settings("%MISSING%", env)


async def test_unreachable_queue_database_does_not_stop_the_host(host_json: Path) -> None:
    from valerix_common.embedded_pg import free_port

    dead_url = f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1"
    runner = FunctionsHost(
        sample_app.build_app(), host_json=host_json, port=0, env=_env(), bus_database_url=dead_url, enable_timers=False
    )
    port = await runner.start()  # the queue side keeps retrying in the background; HTTP serves meanwhile
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/api/sync") as resp:
            assert resp.status == 200
    finally:
        await asyncio.wait_for(runner.stop(), 30)  # a hang guard: the bus retries must not hold the stop


def test_admin_routes_are_refused_like_the_real_host() -> None:
    import azure.functions as func

    from devstack.functions_host import HostConfig, read_functions

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="admin/chaos", methods=["GET"])
    async def admin_chaos(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("never served")

    with pytest.raises(FunctionLoadError, match="reserved"):
        read_functions(app, HostConfig.from_host_json(None))
