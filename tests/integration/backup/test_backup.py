"""Backups against a real PostgreSQL and a real (stand-in) backup service that allows one call a day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from aiohttp.test_utils import TestServer

from devstack.backup.archive import BackupError, read_archive
from devstack.backup.quota import DailyQuota
from devstack.backup.service import BackupServiceClient, QuotaExceeded, stand_in_app
from valerix_common.embedded_pg import EmbeddedPostgres


@pytest.fixture
def databases(pg_server: EmbeddedPostgres | None) -> dict[str, str]:
    if pg_server is None:
        pytest.skip("needs the embedded server for scratch databases")
    urls = {}
    for name in ("orders", "inventory"):
        url = pg_server.create_database(f"backup_{name}_{datetime.now(UTC).strftime('%H%M%S%f')}", "backup_svc")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO t VALUES (1, %s), (2, 'two')", (name,))
        urls[name] = url
    return urls


def _rows(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()


async def test_the_service_itself_refuses_a_second_call_within_the_day(tmp_path: Path) -> None:
    server = TestServer(stand_in_app(tmp_path / "service"), host="127.0.0.1")
    await server.start_server()
    try:
        client = BackupServiceClient(str(server.make_url("")))
        receipt = await client.upload("first.tar.gz", b"x")
        assert receipt["bytes"] == 1
        with pytest.raises(QuotaExceeded) as refused:
            await client.upload("sneaky.tar.gz", b"y")
        assert 0 < refused.value.retry_after_s <= 86400
        assert not (tmp_path / "service" / "sneaky.tar.gz").exists()
    finally:
        await server.close()


def test_quota_allows_one_call_per_24_hours(tmp_path: Path) -> None:
    quota = DailyQuota(tmp_path / "q.json")
    t0 = datetime(2026, 11, 25, 23, 59, tzinfo=UTC)
    assert quota.decide(t0).allowed
    quota.record_call(t0)
    assert not quota.decide(t0 + timedelta(minutes=2)).allowed  # a new calendar day is not a new quota
    assert quota.decide(t0 + timedelta(hours=24)).allowed
    assert DailyQuota(tmp_path / "q.json").last_call() == t0  # remembered across runs


def test_damaged_archive_is_refused(databases: dict[str, str], tmp_path: Path) -> None:
    import io
    import tarfile

    from devstack.backup.archive import dump_databases

    archive = dump_databases(databases)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "orders.dump":
                data = data[:-10] + b"0123456789"
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match="checksum"):
        read_archive(out.getvalue())
