"""`python -m devstack up`: run the whole system until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from devstack.backup.timer import interval_from_env
from devstack.identity.cli import add_token_parser, run_token
from devstack.stack import Stack, StackOptions
from valerix_common.telemetry import configure_logging

log = logging.getLogger("devstack")


async def run_up(args: argparse.Namespace) -> None:
    options = StackOptions(functions_port=args.port, fresh=args.fresh, with_functions=not args.inventory_only,
                           backup_every_s=interval_from_env())
    stack = Stack(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
        print(stack.describe(), flush=True)
        await stop.wait()
    finally:
        print("\nstopping...", flush=True)
        await stack.stop()
        print("stopped.", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole system until Ctrl-C")
    up.add_argument("--port", type=int, default=7071, help="Functions host HTTP port")
    up.add_argument("--fresh", action="store_true", help="start from empty databases")
    up.add_argument("--inventory-only", action="store_true", help="PostgreSQL and the inventory service only")
    add_token_parser(sub)
    args = parser.parse_args()
    if args.command == "token":
        raise SystemExit(run_token(args))
    configure_logging("devstack")
    if args.command == "up":
        asyncio.run(run_up(args))


if __name__ == "__main__":
    main()
