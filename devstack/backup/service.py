"""The backup service: a client for it, and a local stand-in that enforces the same one-call-a-day limit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from devstack.backup.archive import BackupError
from devstack.backup.bundle import is_bundle, read_bundle
from devstack.backup.quota import DailyQuota

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


class QuotaExceeded(Exception):
    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"the backup service allows one call a day; retry in {retry_after_s} s")


class BackupServiceClient:
    def __init__(self, base_url: str, timeout_s: float = 300) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def upload(self, name: str, archive: bytes) -> dict[str, object]:
        async with aiohttp.ClientSession(timeout=self.timeout) as http, http.put(
            f"{self.base_url}/v1/backups/{name}", data=archive,
            headers={"Content-Type": "application/gzip"},
        ) as resp:
            if resp.status == 429:
                raise QuotaExceeded(int(resp.headers.get("Retry-After", "86400")))
            resp.raise_for_status()
            receipt: dict[str, object] = await resp.json()
            return receipt


def stand_in_app(store: Path, clock: Callable[[], datetime] | None = None) -> web.Application:
    """Local stand-in: every call counts against one call per 24 h (as the real service's quota does).

    A bundle's points are kept one file each under `points/`, and its retention set deletes the others.
    """
    quota = DailyQuota(store / "service-quota.json")
    now_fn = clock or (lambda: datetime.now(UTC))

    async def put_backup(request: web.Request) -> web.Response:
        now = now_fn()
        decision = quota.decide(now)
        if not decision.allowed:
            assert decision.next_allowed_at is not None
            retry = int((decision.next_allowed_at - now).total_seconds()) + 1
            return web.json_response({"title": "one call a day"}, status=429, headers={"Retry-After": str(retry)})
        quota.record_call(now, "upload")
        name = request.match_info["name"]
        if not _NAME.match(name):
            return web.json_response({"title": "bad name"}, status=400)
        data = await request.read()
        (store / name).write_bytes(data)
        receipt: dict[str, object] = {"name": name, "bytes": len(data), "stored_at": now.isoformat()}
        if is_bundle(data):
            try:
                receipt |= _store_points(store / "points", data)
            except BackupError as exc:
                return web.json_response({"title": "damaged bundle", "detail": str(exc)}, status=400)
        (store / f"{name}.receipt.json").write_text(json.dumps(receipt))
        return web.json_response(receipt, status=201)

    store.mkdir(parents=True, exist_ok=True)
    app = web.Application(client_max_size=2 * 1024**3)
    app.router.add_put("/v1/backups/{name}", put_backup)
    return app


def _store_points(points_dir: Path, bundle: bytes) -> dict[str, object]:
    """Keeps each point of the bundle, then applies the bundle's retention set to everything stored."""
    manifest, points = read_bundle(bundle)
    points_dir.mkdir(parents=True, exist_ok=True)
    for pid, archive in points.items():
        if not _NAME.match(pid):
            raise BackupError(f"bad restore point id {pid!r}")
        (points_dir / f"{pid}.tar.gz").write_bytes(archive)
    keep = {str(pid) for pid in manifest["retain"]} | set(points)  # type: ignore[attr-defined]
    deleted = sorted(p.name.removesuffix(".tar.gz") for p in points_dir.glob("*.tar.gz")
                     if p.name.removesuffix(".tar.gz") not in keep)
    for pid in deleted:
        (points_dir / f"{pid}.tar.gz").unlink()
    return {"points": sorted(points), "deleted": deleted}
