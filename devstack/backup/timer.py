"""Restore points on a timer while the local stack runs: a snapshot every few hours, retention, the day's upload."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from devstack.backup.points import PointStore
from devstack.backup.run import upload_pending
from devstack.supervisor import cancel_task
from valerix_common.env import env_float

log = logging.getLogger(__name__)

DEFAULT_BACKUP_DIR = Path(__file__).resolve().parents[2] / ".data" / "backups"


def backup_dir_from_env() -> Path:
    """`BACKUP_DIR`, default `.data/backups`: the timer and the CLI share it."""
    return Path(os.environ.get("BACKUP_DIR") or DEFAULT_BACKUP_DIR)


def interval_from_env() -> float:
    """`BACKUP_EVERY_HOURS` (default 4; 0 turns the timer off), in seconds."""
    return env_float("BACKUP_EVERY_HOURS", 4.0, minimum=0) * 3600


class SnapshotTimer:
    def __init__(self, urls: dict[str, str], backup_dir: Path, every_s: float,
                 service_url: str | None = None) -> None:
        self.urls = urls
        self.store = PointStore(backup_dir)
        self.backup_dir = backup_dir
        self.every_s = every_s
        self.service_url = service_url if service_url is not None else os.environ.get("BACKUP_SERVICE_URL")
        self._task: asyncio.Task[None] | None = None

    def describe(self) -> str:
        return (f"a restore point every {self.every_s / 3600:g} h in {self.store.dir} "
                "(BACKUP_EVERY_HOURS; `python -m devstack.backup points`)")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="backup-timer")
        log.info("backup timer: a restore point every %.1f h in %s", self.every_s / 3600, self.store.dir)

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def tick(self) -> None:
        """One round: a restore point, local retention, and the day's upload when one is still due."""
        now = datetime.now(UTC)
        point = await asyncio.to_thread(self.store.snapshot, self.urls, now)
        self.store.prune(now)
        result = await upload_pending(self.backup_dir, self.service_url, now)
        log.info("backup timer: restore point %s; upload: %s", point.point_id, result.detail)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.tick()
            except Exception:  # one failed round (database restarting, service down) must not end the schedule
                log.exception("backup timer: this round failed; the next runs in %.1f h", self.every_s / 3600)
