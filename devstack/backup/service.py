"""The backup service: a client for it, and a local stand-in that enforces the same one-call-a-day limit."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

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


def stand_in_app(store: Path) -> web.Application:
    """Local stand-in: every call counts against one call per 24 h (as the real service's quota does)."""
    quota = DailyQuota(store / "service-quota.json")

    async def put_backup(request: web.Request) -> web.Response:
        now = datetime.now(UTC)
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
        receipt = {"name": name, "bytes": len(data), "stored_at": now.isoformat()}
        (store / f"{name}.receipt.json").write_text(json.dumps(receipt))
        return web.json_response(receipt, status=201)

    store.mkdir(parents=True, exist_ok=True)
    app = web.Application(client_max_size=2 * 1024**3)
    app.router.add_put("/v1/backups/{name}", put_backup)
    return app
