"""Restore points several times a day, one upload a day: real PostgreSQL, the stand-in service over HTTP, the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from devstack.backup.archive import restore_databases
from devstack.backup.bundle import read_bundle, select_point
from devstack.backup.points import PointStore
from devstack.backup.run import upload_pending
from devstack.backup.service import stand_in_app
from valerix_common.embedded_pg import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[3]
DAY0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


@pytest.fixture
def databases(pg_server: EmbeddedPostgres | None) -> dict[str, str]:
    if pg_server is None:
        pytest.skip("needs the embedded server for scratch databases")
    urls = {}
    for name in ("orders", "inventory"):
        url = pg_server.create_database(f"points_{name}_{datetime.now(UTC).strftime('%H%M%S%f')}", "backup_svc")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        urls[name] = url
    return urls


def _set_rows(url: str, rows: list[tuple[int, str]]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM t")
        for row in rows:
            conn.execute("INSERT INTO t VALUES (%s, %s)", row)


def _rows(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()


@dataclass
class Service:
    url: str
    store: Path
    calls: list[str]  # every PUT that reached the service, whatever became of it
    now: list[datetime]  # the stand-in's clock: now[0]
    hold: asyncio.Event | None = None  # while set to an unset event, each call hangs there (a stalled link)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    svc = Service("", tmp_path / "service", [], [DAY0])

    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        svc.calls.append(request.path)
        if svc.hold is not None:
            await asyncio.wait_for(svc.hold.wait(), timeout=60)
        return await handler(request)

    app = stand_in_app(svc.store, clock=lambda: svc.now[0])
    app.middlewares.append(count)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    svc.url = str(server.make_url(""))
    try:
        yield svc
    finally:
        await server.close()


def _cli_env(databases: dict[str, str], backup_dir: Path, service_url: str = "") -> dict[str, str]:
    return {**os.environ, "ORDERS_DATABASE_URL": databases["orders"],
            "INVENTORY_DATABASE_URL": databases["inventory"], "BACKUP_DIR": str(backup_dir),
            "BACKUP_SERVICE_URL": service_url, "PYTHONPATH": str(ROOT)}


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "devstack.backup", *args, env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_each_restore_point_restores_the_data_as_it_was(databases: dict[str, str], tmp_path: Path,
                                                                service: Service) -> None:
    local = tmp_path / "local"
    store = PointStore(local)
    states: dict[str, list[tuple[int, str]]] = {}
    for hour, rows in ((1, [(1, "one")]), (5, [(1, "one"), (2, "two")]), (9, [(2, "two, edited")])):
        _set_rows(databases["orders"], rows)
        _set_rows(databases["inventory"], [(hour, f"inventory at {hour}h")])
        point = await asyncio.to_thread(store.snapshot, databases, DAY0 + timedelta(hours=hour - 1))
        states[point.point_id] = rows

    # `points` lists them, one line each starting with its id
    code, out = await _cli(_cli_env(databases, local), "points")
    assert code == 0, out
    assert [line.split()[0] for line in out.strip().splitlines()] == sorted(states)
    assert all("local only" in line for line in out.strip().splitlines())

    # the day's one call carries all three
    result = await upload_pending(local, service.url, DAY0 + timedelta(hours=9))
    assert result.called and sorted(result.point_ids) == sorted(states)
    assert len(service.calls) == 1
    bundle_path = next(service.store.glob("*.bundle.tar"))
    _, in_bundle = read_bundle(bundle_path.read_bytes())
    assert sorted(in_bundle) == sorted(states)

    _set_rows(databases["orders"], [(9, "after every backup")])
    for point_id, rows in states.items():  # from the uploaded bundle, through the CLI
        code, out = await _cli(_cli_env(databases, local), "restore", str(bundle_path), "--point", point_id)
        assert code == 0 and f"restored point {point_id}" in out, out
        assert _rows(databases["orders"]) == rows
        hour = int(point_id[9:11])
        assert _rows(databases["inventory"]) == [(hour, f"inventory at {hour}h")]
    for point_id, rows in states.items():  # and from the local copies
        chosen, archive = select_point(store.archive_path(point_id).read_bytes(), point_id)
        assert chosen == point_id
        await asyncio.to_thread(restore_databases, archive, databases)
        assert _rows(databases["orders"]) == rows

    code, out = await _cli(_cli_env(databases, local), "restore", str(bundle_path), "--point", "19990101T000000Z")
    assert code != 0 and "no restore point" in out


async def test_second_upload_the_same_day_makes_no_call_and_says_so(databases: dict[str, str], tmp_path: Path,
                                                                    service: Service) -> None:
    local = tmp_path / "local"
    env = _cli_env(databases, local, service.url)
    code, out = await _cli(env, "run")  # `make backup`: snapshot + upload
    assert code == 0 and "upload: uploaded 1 restore point(s) in one call" in out, out
    code, out = await _cli(env, "snapshot")
    assert code == 0, out
    code, out = await _cli(env, "upload")
    assert code == 0 and "upload skipped: today's one call was already made: no call made" in out, out
    assert "1 restore point(s) waiting" in out
    assert len(service.calls) == 1


async def test_quota_is_never_exceeded_across_a_crash_mid_upload(databases: dict[str, str], tmp_path: Path,
                                                                 service: Service) -> None:
    local = tmp_path / "local"
    env = _cli_env(databases, local, service.url)
    for _ in range(2):
        code, out = await _cli(env, "snapshot")
        assert code == 0, out
    service.hold = asyncio.Event()  # the call reaches the service and hangs there
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "devstack.backup", "upload", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    for _ in range(300):  # up to 30 s for the call to arrive
        if service.calls:
            break
        await asyncio.sleep(0.1)
    assert len(service.calls) == 1
    proc.send_signal(signal.SIGKILL)  # the uploader dies mid-call
    assert await asyncio.wait_for(proc.wait(), timeout=10) == -signal.SIGKILL
    service.hold.set()
    service.hold = None

    code, out = await _cli(env, "upload")  # run again, the same day
    assert code == 0 and "no call made" in out, out
    assert len(service.calls) == 1, "a second call the same day"
    pending = [p for p in PointStore(local).all() if not p.uploaded_at]
    assert len(pending) == 2, "the ambiguous call must not count as a delivery"

    # a day later the next call carries both points again, so nothing is lost
    service.now[0] = datetime.now(UTC) + timedelta(days=1, minutes=1)
    result = await upload_pending(local, service.url, service.now[0])
    assert result.called and sorted(result.point_ids) == sorted(p.point_id for p in pending)
    assert len(service.calls) == 2
    assert sorted(p.name for p in (service.store / "points").glob("*.tar.gz")) == \
        sorted(f"{p.point_id}.tar.gz" for p in pending)


async def test_retention_applies_locally_and_through_the_next_upload_remotely(
    databases: dict[str, str], tmp_path: Path, service: Service
) -> None:
    local = tmp_path / "local"
    store = PointStore(local)
    # 12 days, a point every 12 hours, uploaded once a day
    for day in range(12):
        for hour in (0, 12):
            at = DAY0 + timedelta(days=day, hours=hour)
            await asyncio.to_thread(store.snapshot, databases, at)
            store.prune(at)
        service.now[0] = DAY0 + timedelta(days=day, hours=17)
        result = await upload_pending(local, service.url, service.now[0])
        assert result.called, result.detail
    assert len(service.calls) == 12
    end = DAY0 + timedelta(days=11, hours=17)
    kept = {p.point_id for p in store.all()}
    expected = store.keep_set(end)
    assert kept == expected
    day_of = {pid: datetime.strptime(pid[:8], "%Y%m%d").date() for pid in kept}
    assert len([p for p in kept if day_of[p] == end.date()]) == 2, "every point of the last day"
    assert {day_of[p] for p in kept} >= {(end - timedelta(days=d)).date() for d in range(7)}, "7 daily"
    assert len(kept) < 24, "older points were dropped"
    remote = {p.name.removesuffix(".tar.gz") for p in (service.store / "points").glob("*.tar.gz")}
    assert remote == kept, "the service keeps what the last upload's retention set says"


async def test_the_timer_takes_restore_points_while_it_runs(databases: dict[str, str], tmp_path: Path) -> None:
    from devstack.backup.timer import SnapshotTimer

    timer = SnapshotTimer(databases, tmp_path / "local", every_s=0.5, service_url="")
    timer.start()
    try:
        for _ in range(200):  # up to 20 s on a busy machine
            if len(PointStore(tmp_path / "local").all()) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await timer.stop()
    points = PointStore(tmp_path / "local").all()
    assert len(points) >= 2
    assert all(PointStore(tmp_path / "local").read(p) for p in points)  # each archive matches its checksum
