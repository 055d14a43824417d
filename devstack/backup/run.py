"""The day's one upload: every restore point not yet uploaded, in one call, with the retention set."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from devstack.backup.bundle import make_bundle
from devstack.backup.points import PointStore
from devstack.backup.quota import DailyQuota
from devstack.backup.retention import RetentionPolicy
from devstack.backup.service import BackupServiceClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadResult:
    called: bool
    detail: str
    point_ids: list[str] = field(default_factory=list)


async def upload_pending(backup_dir: Path, service_url: str | None, now: datetime | None = None,
                         policy: RetentionPolicy | None = None) -> UploadResult:
    now = now or datetime.now(UTC)
    store = PointStore(backup_dir)
    pending = [p for p in store.all() if not p.uploaded_at]
    if not service_url:
        return UploadResult(False, f"no backup service configured (BACKUP_SERVICE_URL): no call made; "
                                   f"{len(pending)} restore point(s) kept locally")
    if not pending:
        return UploadResult(False, "no restore point waiting to be uploaded: no call made")
    quota = DailyQuota(backup_dir / "client-quota.json")
    decision = quota.decide(now)
    if not decision.allowed:
        return UploadResult(False, f"today's one call was already made: no call made; next upload at "
                                   f"{decision.next_allowed_at} ({len(pending)} restore point(s) waiting)")
    ids = [p.point_id for p in pending]
    keep = store.keep_set(now, policy)
    bundle = await asyncio.to_thread(lambda: make_bundle({p.point_id: store.read(p) for p in pending}, keep, now))
    name = f"valerix-{now.strftime('%Y%m%dT%H%M%SZ')}.bundle.tar"
    # Recorded before the call: if it dies half-way we cannot know whether the service counted it, so an
    # ambiguous call waits for tomorrow, and these points (still not marked uploaded) go with tomorrow's.
    quota.record_call(now, f"upload {name}: {', '.join(ids)}")
    receipt = await BackupServiceClient(service_url).upload(name, bundle)
    store.mark_uploaded(set(ids), now)
    dropped = store.prune(now, policy)
    log.info("bundle %s uploaded: %s", name, receipt)
    return UploadResult(True, f"uploaded {len(ids)} restore point(s) in one call ({receipt.get('bytes')} bytes); "
                              f"the service keeps {len(keep)}; {len(dropped)} old local point(s) dropped", ids)
