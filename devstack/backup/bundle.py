"""The day's one upload: every restore point not yet uploaded, and the ids the service should keep.

A bundle is an uncompressed tar of point archives (each already gzipped and checksummed) plus `bundle.json`:
`{"format", "created_at", "points": {id: sha256}, "retain": [ids]}`. `retain` carries the retention policy to the
service: it keeps those ids (from this or earlier bundles) and deletes the rest.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from datetime import datetime

from devstack.backup.archive import BackupError, read_archive

BUNDLE_FORMAT = "valerix-bundle/1"


def make_bundle(points: dict[str, bytes], retain: set[str], created_at: datetime) -> bytes:
    manifest = {
        "format": BUNDLE_FORMAT,
        "created_at": created_at.isoformat(),
        "points": {pid: hashlib.sha256(data).hexdigest() for pid, data in sorted(points.items())},
        "retain": sorted(retain),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in [*((f"{pid}.tar.gz", d) for pid, d in sorted(points.items())),
                           ("bundle.json", json.dumps(manifest, indent=2).encode())]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def is_bundle(data: bytes) -> bool:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            return "bundle.json" in tar.getnames()
    except tarfile.TarError:
        return False


def read_bundle(data: bytes) -> tuple[dict[str, object], dict[str, bytes]]:
    """The manifest and each point's archive, after checking every point's checksum."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            files = {m.name: m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                handle = tar.extractfile(files[name]) if name in files else None
                if handle is None:
                    raise BackupError(f"bundle has no {name}")
                return handle.read()

            manifest = json.loads(read("bundle.json"))
            if manifest.get("format") != BUNDLE_FORMAT:
                raise BackupError(f"unknown bundle format {manifest.get('format')!r}")
            points: dict[str, bytes] = {}
            for pid, digest in manifest["points"].items():
                archive = read(f"{pid}.tar.gz")
                if hashlib.sha256(archive).hexdigest() != digest:
                    raise BackupError(f"restore point {pid} in the bundle is damaged (checksum mismatch)")
                points[pid] = archive
    except (tarfile.TarError, ValueError, KeyError) as exc:
        raise BackupError(f"not a readable Valerix bundle: {exc}") from exc
    return manifest, points


def select_point(data: bytes, point_id: str | None) -> tuple[str, bytes]:
    """From a bundle: the point asked for (default: its newest). From a single point archive: that point."""
    if is_bundle(data):
        _, points = read_bundle(data)
        if not points:
            raise BackupError("the bundle holds no restore point")
        chosen = point_id or max(points)
        if chosen not in points:
            raise BackupError(f"no restore point {chosen!r} in this bundle; it holds {', '.join(sorted(points))}")
        return chosen, points[chosen]
    manifest, _ = read_archive(data)  # a plain point archive: checked before anything is restored
    found = str(manifest.get("point_id") or "")
    if point_id and point_id != found:
        raise BackupError(f"this archive is restore point {found or '(unnamed)'!r}, not {point_id!r}")
    return found, data
