"""docker-compose.yml's identity wiring agrees with itself and with what the services' own loaders require.

Docker is not available here, so this reads the file: the issuer service's command goes through the issuer's
real argument parser, and each service's environment through the product's real settings loaders (the same
ones that refuse to start on a missing or inconsistent setting). `tests/integration/identity/
test_issuer_process.py` runs that issuer process over TLS and a real inventory that trusts it.
"""

from __future__ import annotations

import argparse
import os
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from devstack.identity import ORDER_SERVICE_CLIENT_ID
from devstack.identity.__main__ import add_serve_parser
from devstack.identity.issuer import TOKEN_PATH
from devstack.identity.settings import INVENTORY_AUDIENCE, ORDERS_AUDIENCE
from devstack.identity.tls import TlsFiles
from inventory_service.config import InventoryConfig
from order_functions.infrastructure.jwt_validator import auth_settings_from_env
from tests.unit.infra._helpers import REPO_ROOT
from tests.unit.infra.test_local_config import compose, local_values, service_env


def serve_args(command: list[str]) -> argparse.Namespace:
    assert command[:3] == ["python", "-m", "devstack.identity"], command
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(command[3:])


def issuer_service() -> dict[str, Any]:
    service: dict[str, Any] = compose()["services"]["issuer"]
    return service


def mounts(service: str) -> dict[str, tuple[str, bool]]:
    """container path -> (volume, read-only) for a compose service's named-volume mounts."""
    found: dict[str, tuple[str, bool]] = {}
    for spec in compose()["services"][service].get("volumes", []):
        source, target, *mode = spec.split(":")
        found[target] = (source, mode == ["ro"])
    return found


@pytest.fixture
def compose_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    def apply(service: str) -> dict[str, str]:
        for name in [n for n in os.environ if n.startswith(("AUTH_", "INVENTORY_"))]:
            monkeypatch.delenv(name)  # only what compose sets counts
        env = service_env(service)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

    return apply


def test_the_issuer_binds_the_compose_network_only_with_tls_and_its_public_url() -> None:
    args = serve_args(issuer_service()["command"])
    assert args.bind == "0.0.0.0" and args.tls_dir is not None
    public = urllib.parse.urlsplit(args.public_url)
    assert (public.scheme, public.hostname, public.port) == ("https", "issuer", args.port)
    env = service_env("issuer")
    assert env["DEVSTACK_ISSUER_URL"] == args.public_url  # `token` inside the container stamps the same iss
    volumes = mounts("issuer")
    assert str(args.tls_dir) in volumes and env["DEVSTACK_IDENTITY_DIR"] in volumes  # both survive restarts
    # it hands out the Order Service's token: the compose network, and the host's loopback only (for `func start`)
    assert issuer_service()["ports"] == [f"127.0.0.1:{args.port}:{args.port}"]
    assert issuer_service()["build"] == {"context": ".", "dockerfile": "infra/docker/issuer.Dockerfile"}
    assert "https://localhost:" + str(args.port) in " ".join(issuer_service()["healthcheck"]["test"])


def test_the_issuer_image_holds_what_the_issuer_imports() -> None:
    text = (REPO_ROOT / "infra" / "docker" / "issuer.Dockerfile").read_text(encoding="utf-8")
    for directory in ("devstack/identity/", "order_functions/domain/"):
        assert f"COPY --chown=root:root {directory}" in text, directory
    assert "pip install --no-deps -r /tmp/requirements.txt" in text and "\nUSER 10001" in text
    requirements = (REPO_ROOT / "inventory_service" / "requirements.txt").read_text(encoding="utf-8")
    assert "pyjwt==" in requirements and "cryptography==" in requirements


def trust_bundle_is_the_issuers(service: str, env: dict[str, str]) -> None:
    """SSL_CERT_FILE names the bundle the issuer writes, in the issuer's TLS volume mounted read-only."""
    issuer_tls = str(serve_args(issuer_service()["command"]).tls_dir)
    tls_volume = mounts("issuer")[issuer_tls][0]
    bundle = PurePosixPath(env["SSL_CERT_FILE"])
    assert bundle.name == TlsFiles(Path(issuer_tls)).bundle.name
    assert mounts(service)[str(bundle.parent)] == (tls_volume, True), service
    assert compose()["services"][service]["depends_on"]["issuer"] == {"condition": "service_healthy"}


def test_the_inventory_loads_its_caller_check_for_the_compose_issuer(compose_env: Any) -> None:
    env = compose_env("inventory")
    config = InventoryConfig.from_env()  # the loader the container runs; refuses to start without caller auth
    issuer = serve_args(issuer_service()["command"]).public_url
    assert config.host not in ("127.0.0.1", "::1")  # reachable from the functions container
    assert config.caller_auth is not None
    assert config.caller_auth.jwt.issuer == issuer
    assert config.caller_auth.jwt.audiences == (INVENTORY_AUDIENCE,)
    assert config.caller_auth.allowed_callers == frozenset({ORDER_SERVICE_CLIENT_ID})
    trust_bundle_is_the_issuers("inventory", env)


def test_the_order_service_loads_its_token_settings_for_the_compose_issuer(compose_env: Any) -> None:
    env = compose_env("functions")
    issuer = serve_args(issuer_service()["command"]).public_url
    settings = auth_settings_from_env()
    assert settings.issuer == issuer and settings.audiences == (ORDERS_AUDIENCE,)
    # its credential for the inventory: the issuer's client-credentials endpoint, for the inventory's audience
    assert env["INVENTORY_AUTH_TOKEN_URL"] == issuer + TOKEN_PATH
    assert env["INVENTORY_AUTH_AUDIENCE"] == service_env("inventory")["INVENTORY_AUTH_AUDIENCE"]
    assert env.get("INVENTORY_AUTH_CLIENT_ID", ORDER_SERVICE_CLIENT_ID) in service_env("inventory")[
        "INVENTORY_ALLOWED_CALLERS"].split(",")
    trust_bundle_is_the_issuers("functions", env)


def test_func_start_on_the_host_uses_the_compose_issuer_through_its_loopback_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """local.settings.example.json: the same issuer identity (`iss`), its keys and token endpoint reached through
    the published port (the server certificate also names localhost), and the bundle copied out of the volume."""
    values = local_values()
    args = serve_args(issuer_service()["command"])
    for name in [n for n in os.environ if n.startswith(("AUTH_", "INVENTORY_"))]:
        monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = auth_settings_from_env()
    local = f"https://localhost:{args.port}"
    assert settings.issuer == args.public_url and settings.audiences == (ORDERS_AUDIENCE,)
    assert settings.jwks_url == local + "/discovery/v2.0/keys"
    assert values["INVENTORY_AUTH_TOKEN_URL"] == local + TOKEN_PATH
    assert values["INVENTORY_AUTH_AUDIENCE"] == INVENTORY_AUDIENCE
    assert PurePosixPath(values["SSL_CERT_FILE"]).parts[0] == ".data"  # a local copy, never committed
    bundle = TlsFiles(Path(str(args.tls_dir))).bundle
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"docker compose cp issuer:{bundle} {values['SSL_CERT_FILE']}" in readme  # how the copy gets there
