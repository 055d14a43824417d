"""The issuer as docker-compose runs it: its own process, TLS with its local CA, trusted through SSL_CERT_FILE.

No Docker here, so the compose network is stood in for by loopback with an https public URL: the same command,
the same trust chain (issuer CA -> `ca-bundle.pem` -> SSL_CERT_FILE), the same product code on both sides (the
order side's token fetch, the inventory's caller check), each in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from devstack.identity import ORDER_SERVICE_CLIENT_ID
from devstack.identity.__main__ import add_serve_parser, issuer_from_args
from devstack.identity.issuer import TOKEN_PATH, LocalIssuer
from devstack.identity.settings import INVENTORY_AUDIENCE
from protos import inventory_pb2 as pb
from protos import inventory_stub
from tests import REPO_ROOT
from tests.support.inventory import inventory_process_env, spawn_inventory, wait_serving
from valerix_common.embedded_pg import free_port


def serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["serve", *argv])


def test_the_issuer_binds_loopback_unless_told_otherwise_and_then_only_with_tls(tmp_path: Path) -> None:
    issuer = issuer_from_args(serve_args("--port", "0"))
    try:
        assert issuer._server.server_address[0] == "127.0.0.1"
        assert issuer.url.startswith("http://127.0.0.1:")
    finally:
        issuer._server.server_close()
    with pytest.raises(SystemExit, match="needs --tls-dir"):
        issuer_from_args(serve_args("--bind", "0.0.0.0", "--port", "0"))
    with pytest.raises(SystemExit, match="needs --tls-dir"):
        issuer_from_args(serve_args("--bind", "0.0.0.0", "--port", "0", "--tls-dir", str(tmp_path)))
    with pytest.raises(ValueError, match="loopback only"):
        LocalIssuer(host="0.0.0.0")


def https_json(url: str, cafile: Path) -> dict[str, object]:
    context = ssl.create_default_context(cafile=str(cafile))
    with urllib.request.urlopen(url, timeout=3, context=context) as reply:
        body: dict[str, object] = json.load(reply)
        return body


@pytest.fixture
def tls_issuer(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`serve` with TLS and an https public URL, as compose starts it (loopback stands in for the network)."""
    port = free_port()
    url = f"https://localhost:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DEVSTACK_IDENTITY_DIR": str(tmp_path / "keys"),
           "DEVSTACK_ISSUER_URL": url}
    env.pop("SSL_CERT_FILE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.identity", "serve", "--bind", "127.0.0.1", "--port", str(port),
         "--public-url", url, "--tls-dir", str(tmp_path / "tls")],
        env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                document = https_json(url + "/.well-known/openid-configuration", tmp_path / "tls" / "ca.pem")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the issuer never answered over https"
                time.sleep(0.1)
        assert document["issuer"] == url and document["jwks_uri"] == url + "/discovery/v2.0/keys"
        yield url, tmp_path / "tls" / "ca-bundle.pem"
    finally:
        proc.terminate()
        proc.wait(30)


def order_service_call(target: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.order_service_call", target], env=env, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def customer_token(customer: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "devstack.identity", "token", customer, "--audience", INVENTORY_AUDIENCE],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout.strip().splitlines()[-1]


async def test_the_compose_trust_chain_admits_only_the_order_service(
    tls_issuer: tuple[str, Path], inventory_db_url: str
) -> None:
    url, bundle = tls_issuer
    inventory_env = {
        **inventory_process_env(inventory_db_url), "INVENTORY_AUTH_ISSUER": url,
        "INVENTORY_AUTH_AUDIENCE": INVENTORY_AUDIENCE, "INVENTORY_ALLOWED_CALLERS": ORDER_SERVICE_CLIENT_ID,
        "SSL_CERT_FILE": str(bundle),
    }
    target = f"127.0.0.1:{inventory_env['INVENTORY_GRPC_PORT']}"
    proc = spawn_inventory(inventory_env)
    try:
        await wait_serving(target, deadline_s=60)
        caller_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "INVENTORY_AUTH_AUDIENCE": INVENTORY_AUDIENCE,
                      "INVENTORY_AUTH_TOKEN_URL": url + TOKEN_PATH, "SSL_CERT_FILE": str(bundle)}
        # the Order Service's token, fetched over https from the issuer, checked by the inventory over https
        assert await asyncio.to_thread(order_service_call, target, caller_env) == "NOT_FOUND"
        # without the local CA the certificate is not trusted: no token, so "inventory unavailable"
        untrusting = {k: v for k, v in caller_env.items() if k != "SSL_CERT_FILE"}
        assert await asyncio.to_thread(order_service_call, target, untrusting) == "NO_CREDENTIAL"
        # `token` in the issuer container mints for that issuer; a customer is not the Order Service
        token_env = {**caller_env, "DEVSTACK_ISSUER_URL": url, "DEVSTACK_IDENTITY_DIR": str(bundle.parents[1] / "keys")}
        minted = await asyncio.to_thread(customer_token, "alice", token_env)
        async with grpc.aio.insecure_channel(target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await inventory_stub(channel).GetReservation(
                    pb.GetReservationRequest(order_id="00000000-0000-4000-8000-000000000000"),
                    metadata=(("authorization", f"Bearer {minted}"),), timeout=10,
                )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
