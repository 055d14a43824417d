"""``python -m devstack.functions_host``: serve a FunctionApp locally until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from devstack.functions_host.host import FunctionsHost
from devstack.functions_host.settings import DEFAULT_APP, FunctionLoadError

log = logging.getLogger("devstack.functions_host")


async def serve(host: FunctionsHost) -> None:
    """Runs until SIGTERM/SIGINT, then stops gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await host.start()
    try:
        await stop.wait()
    finally:
        log.info("Shutting down")
        await host.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.functions_host",
        description="A thin local runner for an azure.functions FunctionApp (no Core Tools needed).",
    )
    parser.add_argument("--app", default=os.environ.get("FUNCTIONS_APP", DEFAULT_APP), help="module:attr of the app")
    parser.add_argument("--host", default=None, help="bind address (default FUNCTIONS_HTTP_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default FUNCTIONS_HTTP_PORT or 7071)")
    parser.add_argument("--host-json", type=Path, default=None, help="host.json (default: beside the app module)")
    parser.add_argument("--no-queues", action="store_true", help="do not poll the local queue")
    parser.add_argument("--no-timers", action="store_true", help="do not fire timer triggers")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    try:
        host = FunctionsHost.from_spec(
            args.app,
            host_json=args.host_json,
            http_host=args.host,
            port=args.port,
            enable_queues=not args.no_queues,
            enable_timers=not args.no_timers,
        )
        asyncio.run(serve(host))
    except FunctionLoadError as exc:
        log.error("Cannot start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
