"""Restore points on this machine: one checksummed archive per point, and an index saying which are uploaded."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from devstack.backup.archive import BackupError, dump_databases
from devstack.backup.retention import RetentionPolicy, retained

log = logging.getLogger(__name__)


@dataclass
class Point:
    point_id: str
    created_at: str  # ISO 8601, UTC
    bytes: int
    sha256: str
    uploaded_at: str | None = None

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    def line(self) -> str:
        state = f"uploaded {self.uploaded_at}" if self.uploaded_at else "local only"
        return f"{self.point_id}  {self.created_at}  {self.bytes:>10} bytes  sha256:{self.sha256[:16]}  {state}"


class PointStore:
    """`<dir>/points/<id>.tar.gz` plus `<dir>/points/index.json`; every write is atomic (write, then rename)."""

    def __init__(self, backup_dir: Path) -> None:
        self.dir = backup_dir / "points"
        self.index_path = self.dir / "index.json"

    def all(self) -> list[Point]:
        try:
            raw = json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return []
        return sorted((Point(**p) for p in raw["points"]), key=lambda p: p.point_id)

    def get(self, point_id: str) -> Point:
        for p in self.all():
            if p.point_id == point_id:
                return p
        raise BackupError(f"no restore point {point_id!r} here (see `python -m devstack.backup points`)")

    def archive_path(self, point_id: str) -> Path:
        return self.dir / f"{point_id}.tar.gz"

    def read(self, point: Point) -> bytes:
        data = self.archive_path(point.point_id).read_bytes()
        if hashlib.sha256(data).hexdigest() != point.sha256:
            raise BackupError(f"restore point {point.point_id} is damaged on disk (checksum mismatch)")
        return data

    def snapshot(self, urls: dict[str, str], now: datetime | None = None) -> Point:
        now = now or datetime.now(UTC)
        known = {p.point_id for p in self.all()}
        point_id = base = now.strftime("%Y%m%dT%H%M%SZ")
        n = 1
        while point_id in known:
            n += 1
            point_id = f"{base}-{n}"
        archive = dump_databases(urls, point_id=point_id, created_at=now)
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.archive_path(point_id), archive)
        point = Point(point_id, now.isoformat(), len(archive), hashlib.sha256(archive).hexdigest())
        self._save([*self.all(), point])
        log.info("restore point %s taken (%d bytes)", point_id, len(archive))
        return point

    def mark_uploaded(self, point_ids: set[str], at: datetime) -> None:
        points = self.all()
        for p in points:
            if p.point_id in point_ids:
                p.uploaded_at = at.isoformat()
        self._save(points)

    def keep_set(self, now: datetime, policy: RetentionPolicy | None = None) -> set[str]:
        points = self.all()
        pending = {p.point_id for p in points if not p.uploaded_at}
        return retained([(p.point_id, p.created) for p in points], now, pending, policy)

    def prune(self, now: datetime, policy: RetentionPolicy | None = None) -> list[str]:
        """Deletes the local points the policy no longer keeps; returns their ids."""
        keep = self.keep_set(now, policy)
        points = self.all()
        dropped = [p.point_id for p in points if p.point_id not in keep]
        self._save([p for p in points if p.point_id in keep])  # index first: a crash leaves a stray file only
        for pid in dropped:
            self.archive_path(pid).unlink(missing_ok=True)
        if dropped:
            log.info("retention dropped %d local restore point(s): %s", len(dropped), ", ".join(dropped))
        return dropped

    def _save(self, points: list[Point]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        body = {"points": [asdict(p) for p in sorted(points, key=lambda p: p.point_id)]}
        _write_atomic(self.index_path, json.dumps(body, indent=2).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
