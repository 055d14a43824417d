"""A start-up that hangs on its database exits with its own code, so the supervisor restarts it (real process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from devstack.identity import ORDER_SERVICE_CLIENT_ID
from devstack.identity.settings import INVENTORY_AUDIENCE
from inventory_service.startup_watchdog import EXIT_STARTUP_TIMEOUT
from tests import REPO_ROOT
from tests.support.identity import issuer


def test_inventory_exits_when_start_up_hangs_on_a_silent_database() -> None:
    # A loopback listener that accepts and never speaks: the PostgreSQL handshake waits forever.
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    env = {
        **os.environ,
        "INVENTORY_DATABASE_URL": f"postgresql://inventory@127.0.0.1:{port}/inventory",
        "INVENTORY_BIND_HOST": "127.0.0.1",
        "INVENTORY_GRPC_PORT": "0",
        "INVENTORY_HEALTH_PORT": "0",
        "INVENTORY_STARTUP_TIMEOUT_SECONDS": "2",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "",
        # the caller check is always on (it is not what this test is about)
        "INVENTORY_AUTH_ISSUER": issuer().url,
        "INVENTORY_AUTH_AUDIENCE": INVENTORY_AUDIENCE,
        "INVENTORY_ALLOWED_CALLERS": ORDER_SERVICE_CLIENT_ID,
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "inventory_service"], cwd=REPO_ROOT, env=env,
            capture_output=True, text=True, timeout=60,
        )
    finally:
        silent.close()
    assert proc.returncode == EXIT_STARTUP_TIMEOUT, proc.stderr[-2000:]
    assert "start-up did not finish" in proc.stderr + proc.stdout
