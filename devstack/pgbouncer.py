"""A real PgBouncer (Debian's package) in transaction pooling mode, as Azure's built-in one on port 6432 runs.

    python -m devstack.pgbouncer ensure   # install Debian pgbouncer when it is missing (root only)
    python -m devstack.pgbouncer path     # print the executable, exit 1 when there is none

`PgBouncer(...)` runs one in front of a PostgreSQL on loopback for the tests
(tests/integration/common/test_pgbouncer.py).
PgBouncer refuses to run as root, so as root it runs as the embedded PostgreSQL's system user.
"""

from __future__ import annotations

import argparse
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

APT_TIMEOUT_S = 600
APT_ATTEMPTS = 3
_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
RUN_AS_WHEN_ROOT = "embedded_postgres"  # the system user valerix_common.embedded_pg runs PostgreSQL as


def pgbouncer_path() -> Path | None:
    found = os.environ.get("VALERIX_PGBOUNCER") or shutil.which("pgbouncer")
    for candidate in (found, *_CANDIDATES):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def _run(command: list[str]) -> int:
    print("+", " ".join(command), flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(command, env=env, timeout=APT_TIMEOUT_S, check=False).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"{command[0]} failed: {exc}", file=sys.stderr)
        return 1


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
    for attempt in range(1, APT_ATTEMPTS + 1):  # a registry hiccup should not fail a whole CI run
        if _run(["apt-get", "update"]) == 0 and _run(
            ["apt-get", "install", "-y", "--no-install-recommends", "pgbouncer"]
        ) == 0:
            break
        print(f"apt-get attempt {attempt}/{APT_ATTEMPTS} failed", file=sys.stderr)
        if attempt == APT_ATTEMPTS:
            return 1
        time.sleep(10 * attempt)
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


@dataclass
class PgBouncer:
    """PgBouncer on 127.0.0.1 forwarding every database to `server_port`, transaction pooling, trust auth."""

    workdir: Path
    server_port: int
    users: tuple[str, ...]
    pool_size: int = 2  # small, so clients' transactions share and swap server connections
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self, timeout_s: float = 20) -> PgBouncer:
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
                raise RuntimeError(f"pgbouncer exited with {self._proc.returncode}:\n{self.log_tail()}")
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
