"""`python -m devstack.backup {snapshot,points,upload,restore,run,serve}`.

    snapshot                     take a restore point now (both databases, checksummed) and apply retention
    points                       list the restore points, one a line, each starting with its id
    upload                       the day's one call: every point not yet uploaded, plus the retention set
    restore ARCHIVE [--point ID] restore both databases from a point archive or an uploaded bundle
    run                          snapshot, then upload (`make backup`)
    serve [--port N]             a local stand-in for the backup service (one call a day)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from devstack.backup.archive import BackupError, restore_databases
from devstack.backup.bundle import select_point
from devstack.backup.points import PointStore
from devstack.backup.run import upload_pending
from devstack.backup.service import stand_in_app
from devstack.backup.timer import backup_dir_from_env
from devstack.stack import StackOptions
from valerix_common.telemetry import configure_logging


def backup_dir() -> Path:
    return backup_dir_from_env()


def database_urls() -> dict[str, str]:
    """From the environment, or from the running `make up` stack's state file."""
    urls = {name: os.environ.get(f"{name.upper()}_DATABASE_URL", "") for name in ("orders", "inventory")}
    if all(urls.values()):
        return urls
    state = StackOptions().data_dir / "stack.json"
    if not state.exists():
        sys.exit("no database URLs: set ORDERS_DATABASE_URL and INVENTORY_DATABASE_URL, or run `make up` first")
    saved = json.loads(state.read_text())
    return {"orders": saved["ORDERS_DATABASE_URL"], "inventory": saved["INVENTORY_DATABASE_URL"]}


def snapshot() -> None:
    store = PointStore(backup_dir())
    now = datetime.now(UTC)
    point = store.snapshot(database_urls(), now)
    dropped = store.prune(now)
    print(f"{point.point_id}  restore point taken: {store.archive_path(point.point_id)}")
    if dropped:
        print(f"retention dropped {len(dropped)} old local point(s): {', '.join(dropped)}")


def upload() -> None:
    result = asyncio.run(upload_pending(backup_dir(), os.environ.get("BACKUP_SERVICE_URL")))
    print(("upload: " if result.called else "upload skipped: ") + result.detail)


def restore(archive: Path, point_id: str | None) -> None:
    chosen, data = select_point(archive.read_bytes(), point_id)
    restored = restore_databases(data, database_urls())
    print(f"restored point {chosen or '(unnamed)'}: {', '.join(restored)}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.backup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("snapshot", "points", "upload", "run"):
        sub.add_parser(name)
    rest = sub.add_parser("restore")
    rest.add_argument("archive", type=Path)
    rest.add_argument("--point", help="restore point id (default: the newest in a bundle)")
    serve = sub.add_parser("serve")
    serve.add_argument("--port", type=int, default=8090)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    configure_logging("backup")
    try:
        if args.command in ("snapshot", "run"):
            snapshot()
        if args.command in ("upload", "run"):
            upload()
        if args.command == "points":
            points = PointStore(backup_dir()).all()
            print("\n".join(p.line() for p in points) if points else "no restore points yet", flush=True)
        elif args.command == "restore":
            restore(args.archive, args.point)
        elif args.command == "serve":
            web.run_app(stand_in_app(backup_dir() / "service"), host="127.0.0.1", port=args.port)
    except (BackupError, OSError) as exc:
        sys.exit(f"backup: {exc}")


if __name__ == "__main__":
    main()
