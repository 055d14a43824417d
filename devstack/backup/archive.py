"""One archive holding a custom-format pg_dump of every service database, with a checksummed manifest."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from valerix_common.embedded_pg import find_binaries

FORMAT = "valerix-backup/1"


class BackupError(Exception):
    pass


def _run(cmd: list[str], timeout_s: float = 600) -> bytes:
    result = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    if result.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    return result.stdout


def dump_databases(urls: dict[str, str], bin_dir: Path | None = None, *, point_id: str = "",
                   created_at: datetime | None = None) -> bytes:
    """A gzipped tar: `<name>.dump` per database and `manifest.json` with sizes and SHA-256 sums.

    Each dump is one transaction's snapshot of its database. The dumps run side by side so the two databases
    are read at nearly the same moment; what a cross-database gap leaves (a reservation without its order, an
    order still pending) is exactly what the reconciler settles after a restore.
    """
    bin_dir = bin_dir or find_binaries()
    created = (created_at or datetime.now(UTC)).isoformat()
    databases: dict[str, dict[str, object]] = {}
    manifest: dict[str, object] = {"format": FORMAT, "point_id": point_id, "created_at": created,
                                   "databases": databases}
    names = sorted(urls)
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        dumps = list(pool.map(
            lambda n: _run([str(bin_dir / "pg_dump"), "--format=custom", "--no-owner", "--dbname", urls[n]]), names))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, dump in zip(names, dumps, strict=True):
            databases[name] = {"file": f"{name}.dump", "bytes": len(dump), "sha256": hashlib.sha256(dump).hexdigest()}
            _add(tar, f"{name}.dump", dump)
        _add(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def read_archive(archive: bytes) -> tuple[dict[str, object], dict[str, bytes]]:
    """Returns the manifest and the dumps, after checking every checksum."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        if "manifest.json" not in members:
            raise BackupError("not a Valerix backup: no manifest.json")

        def read(name: str) -> bytes:
            handle = tar.extractfile(members[name])
            if handle is None:
                raise BackupError(f"{name} is not a file")
            return handle.read()

        manifest = json.loads(read("manifest.json"))
        if manifest.get("format") != FORMAT:
            raise BackupError(f"unknown backup format {manifest.get('format')!r}")
        dumps: dict[str, bytes] = {}
        for name, entry in manifest["databases"].items():
            data = read(entry["file"])
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise BackupError(f"checksum mismatch for {name}: the archive is damaged")
            dumps[name] = data
    return manifest, dumps


def restore_databases(archive: bytes, urls: dict[str, str], bin_dir: Path | None = None) -> list[str]:
    """Restores each database present in both the archive and `urls` (objects are dropped and recreated)."""
    bin_dir = bin_dir or find_binaries()
    _, dumps = read_archive(archive)
    restored = []
    for name, data in dumps.items():
        if name not in urls:
            continue
        with tempfile.NamedTemporaryFile(suffix=".dump") as handle:
            handle.write(data)
            handle.flush()
            _run([str(bin_dir / "pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
                  "--dbname", urls[name], handle.name])
        restored.append(name)
    return restored
