"""A real PgBouncer (Debian's package) in transaction pooling mode, as Azure's built-in one on port 6432 runs.

    python -m devstack.pgbouncer ensure   # install Debian pgbouncer when it is missing (root only)
    python -m devstack.pgbouncer path     # print the executable, exit 1 when there is none

`PgBouncer(...)` runs one in front of a PostgreSQL on loopback for the tests
(tests/integration/common/test_pgbouncer.py).
PgBouncer refuses to run as root, so as root it runs as the embedded PostgreSQL's system user.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.apt import apt_install

log = logging.getLogger(__name__)

APT_TIMEOUT_S = 600
_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
RUN_AS_WHEN_ROOT = "embedded_postgres"  # the system user valerix_common.embedded_pg runs PostgreSQL as


def pgbouncer_path() -> Path | None:
    found = os.environ.get("VALERIX_PGBOUNCER") or shutil.which("pgbouncer")
    for candidate in (found, *_CANDIDATES):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def ensure() -> int:
    """0 when pgbouncer is available afterwards; installs Debian's package (with retries) when root."""
    found = pgbouncer_path()
    if found is not None:
        print(f"pgbouncer already available: {found}")
        return 0
    if os.geteuid() != 0:
        print("pgbouncer is missing and this is not root: install it with `sudo apt-get install -y pgbouncer`",
              file=sys.stderr)
        return 2
    if shutil.which("apt-get") is None:
        print("pgbouncer is missing and apt-get is not available on this system", file=sys.stderr)
        return 2
    print("pgbouncer is missing: installing Debian's pgbouncer package")
    if not apt_install("pgbouncer", APT_TIMEOUT_S):
        return 1
    found = pgbouncer_path()
    if found is None:
        print("pgbouncer was installed but no executable was found", file=sys.stderr)
        return 1
    print(f"installed: {found}")
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgBouncerCrashed(RuntimeError):
    """It died of a signal before it listened."""


@dataclass
class PgBouncer:
    """PgBouncer on 127.0.0.1 forwarding every database to `server_port`, transaction pooling, trust auth."""

    workdir: Path
    server_port: int
    users: tuple[str, ...]
    pool_size: int = 2  # small, so clients' transactions share and swap server connections
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self, timeout_s: float = 20, attempts: int = 3) -> PgBouncer:
        """Starts it and waits until it listens. Debian's 1.18 has been seen to die of SIGSEGV at start-up, before
        writing a log line, about once in a few dozen starts on a loaded machine: such a start is tried again."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout_s)
            except PgBouncerCrashed as exc:
                if attempt == attempts:
                    raise
                log.warning("pgbouncer start %d of %d failed (%s); starting it again", attempt, attempts, exc)
                self.port = 0
        raise AssertionError("unreachable")

    def _start_once(self, timeout_s: float) -> PgBouncer:
        binary = pgbouncer_path()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed: run `python -m devstack.pgbouncer ensure`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        config = self._write_config()
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS_WHEN_ROOT)
            for path in (self.workdir, *self.workdir.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
            kwargs["user"] = RUN_AS_WHEN_ROOT
        self._proc = subprocess.Popen([str(binary), str(config)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, **kwargs)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                error = PgBouncerCrashed if self._proc.returncode < 0 else RuntimeError  # killed by a signal
                raise error(f"pgbouncer exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on {self.port} within {timeout_s}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def url(self, database: str, user: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def log_tail(self, lines: int = 30) -> str:
        log = self.workdir / "pgbouncer.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"

    def _write_config(self) -> Path:
        userlist = self.workdir / "userlist.txt"
        userlist.write_text("".join(f'"{user}" ""\n' for user in self.users))
        config = self.workdir / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {userlist}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 200\n"
            f"logfile = {self.workdir / 'pgbouncer.log'}\n"
            f"pidfile = {self.workdir / 'pgbouncer.pid'}\n"
        )
        return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.pgbouncer", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["ensure", "path"])
    args = parser.parse_args(argv)
    if args.command == "ensure":
        return ensure()
    found = pgbouncer_path()
    if found is None:
        print("pgbouncer not found", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
