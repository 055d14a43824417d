"""Local configuration agrees with itself, with the Bicep and with infra/settings-contract.json:
docker-compose.yml, host.json, the Service Bus emulator config, local.settings.example.json."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import yaml

from tests.unit.infra._helpers import (
    INFRA,
    REPO_ROOT,
    contract,
    iso_seconds,
    load_json,
    module,
    one_resource,
    timespan_seconds,
)

EMULATOR_DEV_KEY = "SAS_KEY_VALUE"  # the emulator's documented, public development key
EMULATOR_MAX_DUPLICATE_WINDOW_S = 300  # emulator limit (PT5M)
EMULATOR_MAX_TTL_S = 3600  # emulator limit (PT1H)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def service_env(name: str) -> dict[str, str]:
    env = compose()["services"][name]["environment"]
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def local_values() -> dict[str, str]:
    data = load_json(REPO_ROOT / "local.settings.example.json")
    values: dict[str, str] = data["Values"]
    return values


def emulator_queue() -> dict[str, Any]:
    cfg = load_json(INFRA / "servicebus-emulator" / "config.json")["UserConfig"]
    assert cfg["Logging"]["Type"]
    (namespace,) = cfg["Namespaces"]
    assert namespace["Name"] == "sbemulatorns"  # the only name the emulator accepts
    queues = {q["Name"]: q["Properties"] for q in namespace["Queues"]}
    props: dict[str, Any] = queues["verify-order"]
    return props


def bicep_queue() -> dict[str, Any]:
    props: dict[str, Any] = one_resource(module("servicebus"), "Microsoft.ServiceBus/namespaces/queues")["properties"]
    return props


def published(service: str) -> dict[int, int]:
    """container port -> host port for a compose service."""
    out: dict[int, int] = {}
    for spec in compose()["services"][service].get("ports", []):
        parts = str(spec).split(":")
        out[int(parts[-1])] = int(parts[-2])
    return out


# ------------------------------------------------------------------ host.json


def test_host_json() -> None:
    host = load_json(REPO_ROOT / "host.json")
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    assert host["extensions"]["http"]["routePrefix"] == "api"
    sb = host["extensions"]["serviceBus"]
    assert sb["prefetchCount"] == 0
    assert sb["autoCompleteMessages"] is True
    assert sb["maxConcurrentCalls"] >= 1
    assert host["telemetryMode"] == "OpenTelemetry"
    assert "Request" in host["logging"]["applicationInsights"]["samplingSettings"]["excludedTypes"]
    assert "retry" not in host  # no host-level retry: Service Bus redelivery + DLQ own retries
    timeout = timespan_seconds(host["functionTimeout"])
    lock_renewal = timespan_seconds(sb["maxAutoLockRenewalDuration"])
    assert lock_renewal >= timeout, "the message lock must be renewed for as long as a function may run"
    assert iso_seconds(bicep_queue()["lockDuration"]) < lock_renewal


# ------------------------------------------------------------------ Service Bus emulator vs Bicep


def test_emulator_queue_matches_bicep() -> None:
    emu, cloud = emulator_queue(), bicep_queue()
    assert emu["RequiresDuplicateDetection"] is cloud["requiresDuplicateDetection"] is True
    assert emu["MaxDeliveryCount"] == cloud["maxDeliveryCount"]
    assert emu["LockDuration"] == cloud["lockDuration"]
    assert emu["DeadLetteringOnMessageExpiration"] is cloud["deadLetteringOnMessageExpiration"] is True
    assert emu["RequiresSession"] is False
    # Same value as Azure, capped at what the emulator accepts.
    expected_window = min(iso_seconds(cloud["duplicateDetectionHistoryTimeWindow"]), EMULATOR_MAX_DUPLICATE_WINDOW_S)
    assert iso_seconds(emu["DuplicateDetectionHistoryTimeWindow"]) == expected_window
    expected_ttl = min(iso_seconds(cloud["defaultMessageTimeToLive"]), EMULATOR_MAX_TTL_S)
    assert iso_seconds(emu["DefaultMessageTimeToLive"]) == expected_ttl


# ------------------------------------------------------------------ docker-compose


# The images' own tools: what each health check may run inside its container.
IMAGE_TOOLS = {
    "postgres": ("pg_isready",),
    "mssql": ("/opt/mssql-tools18/bin/sqlcmd",),
    "azurite": ("nc ",),  # node:alpine: busybox sh + nc
    "inventory": ("python",),
    "functions": ("python",),
    "issuer": ("python",),
}


def test_compose_health_checks_use_what_each_image_has() -> None:
    services = compose()["services"]
    for name, tools in IMAGE_TOOLS.items():
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        assert any(tool in " ".join(test) for tool in tools), (name, test)
    # The emulator image has no shell, curl or wget (azure-service-bus-emulator-installer#88): no in-container
    # check; a one-shot curl sidecar probes it from outside and `functions` waits for that to succeed.
    assert "healthcheck" not in services["servicebus"]
    ready = services["servicebus-ready"]
    assert ready["image"].startswith("curlimages/curl:")
    assert ready["entrypoint"][0] == "curl" and "--fail" in ready["entrypoint"]  # exec form, no shell
    assert ready["entrypoint"][-1] == "http://servicebus:5300/health"
    assert ready["depends_on"] == {"servicebus": {"condition": "service_started"}}
    assert services["functions"]["depends_on"]["servicebus-ready"] == {"condition": "service_completed_successfully"}
    for name, service in services.items():  # CMD-SHELL needs /bin/sh in that image
        test = service.get("healthcheck", {}).get("test", [])
        assert not (test and test[0] == "CMD-SHELL" and name not in ("postgres", "mssql", "azurite")), name


def test_emulator_declares_the_event_topics_like_bicep() -> None:
    topics = load_json(INFRA / "servicebus-emulator" / "config.json")["UserConfig"]["Namespaces"][0]["Topics"]
    emulated = {t["Name"]: {s["Name"] for s in t["Subscriptions"]} for t in topics}
    assert emulated == {"reservation-events": {"order-service"}, "order-events": {"notifications"}}


def test_compose_images_and_builds() -> None:
    services = compose()["services"]
    assert services["servicebus"]["image"].startswith("mcr.microsoft.com/azure-messaging/servicebus-emulator")
    assert services["azurite"]["image"].startswith("mcr.microsoft.com/azure-storage/azurite")
    assert services["inventory"]["build"] == {"context": ".", "dockerfile": "inventory_service/Dockerfile"}
    assert services["functions"]["build"] == {"context": ".", "dockerfile": "infra/docker/functions.Dockerfile"}
    assert (REPO_ROOT / "inventory_service" / "Dockerfile").is_file()
    assert (REPO_ROOT / "infra" / "docker" / "functions.Dockerfile").is_file()
    emu_env = service_env("servicebus")
    assert emu_env["SQL_SERVER"] == "mssql"
    assert emu_env["MSSQL_SA_PASSWORD"] == service_env("mssql")["MSSQL_SA_PASSWORD"]


def test_compose_mounts() -> None:
    services = compose()["services"]
    emu_mounts = services["servicebus"]["volumes"]
    assert any(
        m.startswith("./infra/servicebus-emulator/config.json:/ServiceBus_Emulator/ConfigFiles/Config.json")
        for m in emu_mounts
    )
    init_mounts = [m for m in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in m]
    assert init_mounts
    host_dir = REPO_ROOT / init_mounts[0].split(":")[0]
    sql = "".join(p.read_text(encoding="utf-8") for p in sorted(host_dir.glob("*.sql")))
    assert "CREATE DATABASE orders" in sql
    assert "CREATE DATABASE inventory" in sql


def test_compose_ports() -> None:
    assert published("functions") == {80: 7071}
    assert published("inventory") == {50051: 50051, 8081: 8081}
    fn_health = compose()["services"]["functions"]["healthcheck"]["test"]
    assert any("/api/health" in part for part in fn_health)
    inv_health = compose()["services"]["inventory"]["healthcheck"]["test"]
    assert any(":8081/health" in part for part in inv_health)


def test_compose_env_covers_contract() -> None:
    c = contract()
    fn = service_env("functions")
    inv = service_env("inventory")
    fn_expected = set(c["function_app"]) | {
        "FUNCTIONS_WORKER_RUNTIME",
        "AzureWebJobsStorage",
        "ServiceBusConnection",
        "PYTHON_ISOLATE_WORKER_DEPENDENCIES",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    }
    # Locally the bus is a connection string, not a namespace + identity.
    fn_expected -= {"ServiceBusConnection__fullyQualifiedNamespace"}
    assert not fn_expected - set(fn), sorted(fn_expected - set(fn))
    assert not set(c["inventory"]) - set(inv), sorted(set(c["inventory"]) - set(inv))
    known = set().union(*c.values())
    assert not set(fn) - known, f"functions env names not in the contract: {sorted(set(fn) - known)}"
    assert not set(inv) - known, f"inventory env names not in the contract: {sorted(set(inv) - known)}"


def test_compose_wiring_values() -> None:
    fn, inv = service_env("functions"), service_env("inventory")
    assert fn["INVENTORY_GRPC_TARGET"] == f"inventory:{inv['INVENTORY_GRPC_PORT']}"
    assert inv["INVENTORY_GRPC_PORT"] == "50051"
    assert inv["INVENTORY_HEALTH_PORT"] == "8081"
    assert fn["INVENTORY_GRPC_TLS"] == "false"
    assert fn["VERIFY_QUEUE_NAME"] == "verify-order"
    bus = fn["ServiceBusConnection"]
    assert "UseDevelopmentEmulator=true" in bus
    assert "Endpoint=sb://servicebus" in bus
    assert f"SharedAccessKey={EMULATOR_DEV_KEY};" in bus
    assert fn["AzureWebJobsStorage"].startswith("UseDevelopmentStorage=true")
    assert "azurite" in fn["AzureWebJobsStorage"]
    assert urlparse(fn["ORDERS_DATABASE_URL"]).path == "/orders"
    assert urlparse(inv["INVENTORY_DATABASE_URL"]).path == "/inventory"
    assert urlparse(fn["ORDERS_DATABASE_URL"]).hostname == "postgres"
    for url in (fn["ORDERS_DATABASE_URL"], inv["INVENTORY_DATABASE_URL"]):
        assert urlparse(url).password is None
    # chaos off by default
    assert inv["GREMLIN_MODE"] in ("false", "${GREMLIN_MODE:-false}")
    assert inv["SCHRODINGER_CRASH_RATE"] in ("0", "${SCHRODINGER_CRASH_RATE:-0}")


# ------------------------------------------------------------------ local.settings.example.json


def test_local_settings_shape() -> None:
    data = load_json(REPO_ROOT / "local.settings.example.json")
    assert data["IsEncrypted"] is False
    assert data["Host"]["LocalHttpPort"] == 7071
    values = local_values()
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["VERIFY_QUEUE_NAME"] == "verify-order"
    assert values["INVENTORY_GRPC_TARGET"] == "localhost:50051"
    assert values["ADMIN_API_ENABLED"] == "false"
    expected = set(contract()["function_app"]) - {"ServiceBusConnection__fullyQualifiedNamespace"}
    expected |= {"PYTHON_ISOLATE_WORKER_DEPENDENCIES"}
    assert not expected - set(values), sorted(expected - set(values))
    assert all(isinstance(v, str) for v in values.values()), "Values must all be strings"


def test_local_settings_has_no_secrets() -> None:
    values = local_values()
    for name, value in values.items():
        lowered = value.lower()
        assert "accountkey" not in lowered, name
        assert "password=" not in lowered and "pwd=" not in lowered, name
        assert "instrumentationkey" not in lowered, name
        if "sharedaccesskey=" in lowered:
            # Only the emulator's public development key is allowed.
            assert "UseDevelopmentEmulator=true" in value, name
            assert f"SharedAccessKey={EMULATOR_DEV_KEY};" in value, name
        if value.startswith("postgres"):
            assert urlparse(value).password is None, name
    assert values["APPLICATIONINSIGHTS_CONNECTION_STRING"] == ""
    assert values["POSTGRES_AUTH"] in ("password", "entra")  # a mode switch, not a secret


def test_local_settings_agree_with_compose() -> None:
    values, fn = local_values(), service_env("functions")
    for name in (
        "VERIFY_QUEUE_NAME",
        "INVENTORY_TIMEOUT_SECONDS",
        "RECONCILE_STALE_AFTER_SECONDS",
        "RECONCILE_GIVE_UP_AFTER_SECONDS",
        "RECONCILE_SCHEDULE",
        "POSTGRES_AUTH",
        "INVENTORY_GRPC_TLS",
    ):
        assert values[name] == fn[name], name
    # Same database names and user; only the host differs (localhost vs compose service name).
    for name in ("ORDERS_DATABASE_URL",):
        local, dock = urlparse(values[name]), urlparse(fn[name])
        assert (local.path, local.username, local.port) == (dock.path, dock.username, dock.port)
    assert values["INVENTORY_GRPC_TARGET"].rsplit(":", 1)[1] == fn["INVENTORY_GRPC_TARGET"].rsplit(":", 1)[1]


# ------------------------------------------------------------------ Dockerfiles / ignore files


def test_inventory_dockerfile() -> None:
    text = (REPO_ROOT / "inventory_service" / "Dockerfile").read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("#") or "FROM python:3.11-slim" in text
    assert "FROM python:3.11-slim" in text
    assert "\nUSER " in text and "USER root" not in text
    # exactly the pinned list tests/integration/inventory/test_image_requirements.py proves, installed the same way
    assert "COPY inventory_service/requirements.txt " in text
    assert "pip install --no-deps -r /tmp/requirements.txt" in text and "pip check" in text
    assert "pip install \\\n" not in text, "no second, unpinned package list"
    for directory in ("inventory_service/", "protos/", "valerix_common/"):
        assert f"COPY --chown=root:root {directory}" in text, directory
    assert "EXPOSE 50051 8081" in text
    assert "HEALTHCHECK" in text and "8081/health" in text
    assert 'CMD ["python", "-m", "inventory_service"]' in text


def test_gitignore_and_dockerignore() -> None:
    gitignore = (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").split()
    for line in ("local.settings.json", ".venv/", ".data/", "__pycache__/", ".artifacts/"):
        assert line in gitignore, line
    dockerignore = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for line in (".venv/", ".git", "local.settings.json"):
        assert line in dockerignore, line
    # The images need these directories: they must not be ignored.
    for needed in ("inventory_service", "protos", "valerix_common", "order_functions"):
        assert not any(entry.rstrip("/") == needed for entry in dockerignore), needed
