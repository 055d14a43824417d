"""Take the daily backup: dump everything into one archive, keep a local copy, make the one allowed call."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devstack.backup.archive import dump_databases
from devstack.backup.quota import DailyQuota
from devstack.backup.service import BackupServiceClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupResult:
    archive_path: Path
    uploaded: bool
    detail: str


async def take_backup(urls: dict[str, str], backup_dir: Path, service_url: str | None,
                      now: datetime | None = None) -> BackupResult:
    now = now or datetime.now(UTC)
    name = f"valerix-{now.strftime('%Y%m%dT%H%M%SZ')}.tar.gz"
    path, archive = await asyncio.to_thread(_local_copy, urls, backup_dir, name)
    if not service_url:
        return BackupResult(path, False, "no backup service configured (BACKUP_SERVICE_URL); local copy only")
    quota = DailyQuota(backup_dir / "client-quota.json")
    decision = quota.decide(now)
    if not decision.allowed:
        return BackupResult(path, False, f"today's call is used; next upload at {decision.next_allowed_at}")
    quota.record_call(now, f"upload {name}")
    receipt = await BackupServiceClient(service_url).upload(name, archive)
    log.info("backup %s uploaded: %s", name, receipt)
    return BackupResult(path, True, f"uploaded {receipt.get('bytes')} bytes")


def _local_copy(urls: dict[str, str], backup_dir: Path, name: str) -> tuple[Path, bytes]:
    """The local copy exists whatever happens to the upload."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    archive = dump_databases(urls)
    path = backup_dir / name
    path.write_bytes(archive)
    return path, archive
