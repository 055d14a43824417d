"""`python -m devstack.backup {run,restore,serve}`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from aiohttp import web

from devstack.backup.archive import restore_databases
from devstack.backup.run import take_backup
from devstack.backup.service import stand_in_app
from devstack.stack import ROOT, StackOptions
from valerix_common.telemetry import configure_logging

BACKUP_DIR = ROOT / ".data" / "backups"


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


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.backup")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="dump both databases into one archive and make the day's one upload")
    restore = sub.add_parser("restore", help="restore both databases from an archive")
    restore.add_argument("archive", type=Path)
    serve = sub.add_parser("serve", help="a local stand-in for the backup service (one call a day)")
    serve.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    configure_logging("backup")
    if args.command == "run":
        result = asyncio.run(take_backup(database_urls(), BACKUP_DIR, os.environ.get("BACKUP_SERVICE_URL")))
        print(f"archive: {result.archive_path}\n{result.detail}")
    elif args.command == "restore":
        restored = restore_databases(args.archive.read_bytes(), database_urls())
        print(f"restored: {', '.join(restored)}")
    else:
        web.run_app(stand_in_app(BACKUP_DIR / "service"), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
