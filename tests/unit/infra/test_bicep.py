"""Static checks of infra/*.bicep (parsed with pycep; the Bicep CLI is not available here).

They assert the security and reliability properties the design depends on, so a change that
weakens one of them fails here before it reaches `az deployment`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.infra._helpers import (
    INFRA,
    REPO_ROOT,
    bicep_files,
    contract,
    iso_seconds,
    main_bicep,
    module,
    one_resource,
    parse_bicep,
    resolve,
    resource_config,
    resources_of_type,
    role_definition_guid,
    string_leaves,
)

SB_DATA_SENDER = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
SB_DATA_RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"

SECRET_MARKERS = ("accountkey", "sharedaccesskey", "password=", "defaultendpointsprotocol", "endpoint=sb://")


# ------------------------------------------------------------------ parsing


def test_expected_bicep_files_exist() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    for required in (
        "main.bicep",
        "modules/functionapp.bicep",
        "modules/containerapps.bicep",
        "modules/servicebus.bicep",
        "modules/postgres.bicep",
        "modules/storage.bicep",
        "modules/monitoring.bicep",
        "modules/alerts.bicep",
        "modules/dbroles.bicep",
        "modules/containerapps-environment.bicep",
    ):
        assert required in names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses(path: Path) -> None:
    doc = parse_bicep(path)
    assert doc["resources"] or doc["modules"], f"{path} declares nothing"


def test_main_wires_every_module_file() -> None:
    used = {m["detail"]["path"] for m in main_bicep()["modules"].values()}
    on_disk = {p.relative_to(INFRA).as_posix() for p in (INFRA / "modules").glob("*.bicep")}
    assert on_disk <= used, f"modules not used by main.bicep: {on_disk - used}"
    for rel in used:
        assert (INFRA / rel).is_file(), f"main.bicep references missing {rel}"


def test_module_params_exist_in_module() -> None:
    """Every param main.bicep passes to a module is declared there, and every required one is passed."""
    for name, mod in main_bicep()["modules"].items():
        target = parse_bicep(INFRA / mod["detail"]["path"])
        passed = set(mod["config"]["params"])
        declared = set(target["parameters"])
        assert passed <= declared, f"{name}: unknown params {passed - declared}"
        required = {p for p, spec in target["parameters"].items() if "default" not in spec}
        assert required <= passed, f"{name}: missing required params {required - passed}"


def test_bicepparam_sets_only_known_params() -> None:
    text = (INFRA / "main.bicepparam").read_text(encoding="utf-8")
    assert re.search(r"^using\s+'\./main\.bicep'", text, re.M)
    set_params = set(re.findall(r"^param\s+(\w+)\s*=", text, re.M))
    declared = main_bicep()["parameters"]
    assert set_params <= set(declared), set_params - set(declared)
    required = {p for p, spec in declared.items() if "default" not in spec}
    assert required <= set_params, f"main.bicepparam misses {required - set_params}"


# ------------------------------------------------------------------ Service Bus


def test_service_bus_namespace_is_keyless_standard_tls12() -> None:
    ns = one_resource(module("servicebus"), "Microsoft.ServiceBus/namespaces")
    assert ns["properties"]["disableLocalAuth"] is True
    assert ns["properties"]["minimumTlsVersion"] == "1.2"
    assert ns["sku"]["name"] in ("Standard", "Premium")  # duplicate detection needs >= Standard


def test_verify_queue_properties() -> None:
    doc = module("servicebus")
    queue = one_resource(doc, "Microsoft.ServiceBus/namespaces/queues")
    assert resolve(doc, queue["name"]) == "verify-order"
    props = queue["properties"]
    assert props["requiresDuplicateDetection"] is True
    assert iso_seconds(props["duplicateDetectionHistoryTimeWindow"]) >= 600
    assert props["maxDeliveryCount"] == 10
    assert props["deadLetteringOnMessageExpiration"] is True
    # The VerifyOrder handler's ReserveStock deadline is 15 s: the lock must outlast it.
    assert 15 < iso_seconds(props["lockDuration"]) <= 300
    assert iso_seconds(props["defaultMessageTimeToLive"]) >= 3600
    assert props.get("requiresSession") in (None, False)


def _role_grants(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(scope resource, principal, role GUID) of every role assignment in a parsed file."""
    grants = set()
    for r in resources_of_type(doc, "Microsoft.Authorization/roleAssignments"):
        props = resource_config(r)["properties"]
        assert props["principalType"] == "ServicePrincipal"
        principal = props["principalId"]
        if isinstance(principal, dict):  # identity.properties.principalId
            principal = next(x for x in string_leaves(principal) if x.endswith("Identity"))
        grants.add((resource_config(r)["scope"], principal, role_definition_guid(doc, r)))
    return grants


def test_service_bus_roles_each_scoped_to_one_entity() -> None:
    assert _role_grants(module("servicebus")) == {
        ("queue", "functionPrincipalId", SB_DATA_SENDER),
        ("queue", "functionPrincipalId", SB_DATA_RECEIVER),
        ("reservationTopic", "inventoryPrincipalId", SB_DATA_SENDER),
        ("orderServiceSubscription", "functionPrincipalId", SB_DATA_RECEIVER),
        ("orderTopic", "functionPrincipalId", SB_DATA_SENDER),
        ("notificationsSubscription", "functionPrincipalId", SB_DATA_RECEIVER),
    }
    params = main_bicep()["modules"]["serviceBus"]["config"]["params"]
    assert "inventoryIdentity" in string_leaves(params["inventoryPrincipalId"])
    assert "functionIdentity" in string_leaves(params["functionPrincipalId"])


def test_event_topics_and_subscriptions() -> None:
    doc = module("servicebus")
    topics = {resolve(doc, resource_config(r)["name"]): resource_config(r)
              for r in resources_of_type(doc, "Microsoft.ServiceBus/namespaces/topics")}
    assert set(topics) == {"reservation-events", "order-events"}
    subscriptions = {
        (resource_config(r)["parent"], resource_config(r)["name"])
        for r in resources_of_type(doc, "Microsoft.ServiceBus/namespaces/topics/subscriptions")
    }
    assert subscriptions == {("reservationTopic", "order-service"), ("orderTopic", "notifications")}
    topic_props = resolve(doc, "topicProperties")
    assert topic_props["requiresDuplicateDetection"] is True  # a relay's re-send of one event id is dropped
    sub_props = resolve(doc, "subscriptionProperties")
    assert sub_props["maxDeliveryCount"] == 10 and sub_props["deadLetteringOnMessageExpiration"] is True
    for topic in topics.values():
        assert topic["properties"] == "topicProperties"


# ------------------------------------------------------------------ storage


def test_storage_is_identity_only() -> None:
    doc = module("storage")
    account = one_resource(doc, "Microsoft.Storage/storageAccounts")
    props = account["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    containers = resources_of_type(doc, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert len(containers) == 1, "Flex Consumption needs a deployment container"
    roles = {role_definition_guid(doc, r) for r in resources_of_type(doc, "Microsoft.Authorization/roleAssignments")}
    assert STORAGE_BLOB_DATA_OWNER in roles


# ------------------------------------------------------------------ function app


def _function_app_settings() -> dict[str, Any]:
    doc = module("functionapp")
    config = one_resource(doc, "Microsoft.Web/sites/config")
    assert config["name"] == "appsettings"
    settings = resolve(doc, config["properties"])
    assert isinstance(settings, dict)
    return settings


def test_function_app_on_flex_python_311() -> None:
    doc = module("functionapp")
    plan = one_resource(doc, "Microsoft.Web/serverfarms")
    assert plan["sku"]["name"] == "FC1"
    assert plan["sku"]["tier"] == "FlexConsumption"
    site = one_resource(doc, "Microsoft.Web/sites")
    assert "linux" in site["kind"]
    props = site["properties"]
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    assert props["virtualNetworkSubnetId"] == "virtualNetworkSubnetId"
    runtime = props["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "3.11"}
    auth = props["functionAppConfig"]["deployment"]["storage"]["authentication"]
    assert auth["type"] in ("UserAssignedIdentity", "SystemAssignedIdentity")
    assert site["identity"]["type"] in ("UserAssigned", "SystemAssigned")


def test_function_app_settings_cover_contract() -> None:
    settings = _function_app_settings()
    expected = set(contract()["function_app"]) | set(contract()["function_app_platform"])
    missing = expected - set(settings)
    assert not missing, f"function app settings missing {sorted(missing)}"


def test_function_app_has_no_forbidden_or_secret_settings() -> None:
    settings = _function_app_settings()
    for name in contract()["forbidden_in_azure"]:
        assert name not in settings, f"{name} must not be an app setting on Flex Consumption / in Azure"
    for name, value in settings.items():
        for leaf in string_leaves(value):
            lowered = leaf.lower()
            for marker in SECRET_MARKERS:
                assert marker not in lowered, f"{name} looks like a key/connection string: {leaf!r}"
    assert settings["ServiceBusConnection__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["POSTGRES_AUTH"] == "entra"
    assert settings["POSTGRES_PREPARED_STATEMENTS"] == "true"  # PgBouncer tracks them (postgres.bicep)
    assert settings["ADMIN_API_ENABLED"] == "false"
    assert settings["INVENTORY_GRPC_TLS"] == "true"
    assert settings["PYTHON_ISOLATE_WORKER_DEPENDENCIES"] == "1"


def test_no_key_material_anywhere_in_bicep() -> None:
    for path in bicep_files():
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
        for needle in ("listKeys(", "listConnectionStrings(", "AccountKey=", "SharedAccessKey=", "Password="):
            assert needle not in code, f"{path.name} uses {needle}"
        for leaf in string_leaves(parse_bicep(path)):
            assert "administratorloginpassword" not in leaf.lower()


def test_database_urls_have_no_password_and_use_pgbouncer() -> None:
    mods = main_bicep()["modules"]
    orders = mods["functionApp"]["config"]["params"]["ordersDatabaseUrl"]
    inventory = mods["containerApps"]["config"]["params"]["inventoryDatabaseUrl"]
    for url, db in ((orders, "orders"), (inventory, "inventory")):
        assert url.startswith("postgresql://${"), url
        userinfo = url.split("://", 1)[1].split("@", 1)[0]
        assert ":" not in userinfo, f"password in {url}"
        assert f":6432/{db}?" in url
        assert "sslmode=require" in url


# ------------------------------------------------------------------ container app


def _inventory_app() -> tuple[dict[str, Any], dict[str, Any]]:
    doc = module("containerapps")
    return doc, one_resource(doc, "Microsoft.App/containerApps")


def test_container_app_ingress_reachable_from_the_vnet_over_http2() -> None:
    doc, app = _inventory_app()
    ingress = app["properties"]["configuration"]["ingress"]
    # internal environment + external: true = reachable from the VNet only (false: only from this environment)
    assert ingress["external"] is True
    assert ingress["transport"] == "http2"
    assert ingress["allowInsecure"] is False
    assert resolve(doc, ingress["targetPort"]) == 50051
    env = one_resource(module("containerapps-environment"), "Microsoft.App/managedEnvironments")
    assert env["properties"]["vnetConfiguration"]["internal"] is True
    assert env["properties"]["vnetConfiguration"]["infrastructureSubnetId"] == "infrastructureSubnetId"
    assert app["properties"]["environmentId"] == "environmentId"
    env_id = main_bicep()["modules"]["containerApps"]["config"]["params"]["environmentId"]
    assert "containerAppsEnvironment" in string_leaves(env_id)


# Container Apps API limits for probes.
PROBE_LIMITS = {"failureThreshold": (1, 10), "successThreshold": (1, 10), "periodSeconds": (1, 240),
                "timeoutSeconds": (1, 240), "initialDelaySeconds": (0, 60)}


def test_container_app_probes_on_health_port_within_api_limits() -> None:
    doc, app = _inventory_app()
    container = app["properties"]["template"]["containers"][0]
    probes = {p["type"]: p for p in container["probes"]}
    assert set(probes) == {"Startup", "Liveness", "Readiness"}
    for kind, probe in probes.items():
        assert resolve(doc, probe["httpGet"]["port"]) == 8081
        assert probe["httpGet"]["path"] == "/health"
        for key, (low, high) in PROBE_LIMITS.items():
            if key in probe:
                assert low <= probe[key] <= high, f"{kind} probe {key}={probe[key]} outside {low}..{high}"
    startup = probes["Startup"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 30  # room for migrations + seed


def test_inventory_gets_the_service_bus_namespace() -> None:
    _, app = _inventory_app()
    env = {e["name"]: e["value"] for e in app["properties"]["template"]["containers"][0]["env"]}
    assert env["ServiceBusConnection__fullyQualifiedNamespace"] == "serviceBusFullyQualifiedNamespace"
    params = main_bicep()["modules"]["containerApps"]["config"]["params"]
    assert "serviceBus" in string_leaves(params["serviceBusFullyQualifiedNamespace"])


def test_container_app_scale_and_identity() -> None:
    doc, app = _inventory_app()
    assert resolve(doc, app["properties"]["template"]["scale"]["minReplicas"]) >= 1
    assert app["identity"]["type"] == "UserAssigned"
    min_param = module("containerapps")["parameters"]["minReplicas"]["default"]
    assert min_param >= 1


def test_container_app_env_covers_contract_and_chaos_is_off() -> None:
    doc, app = _inventory_app()
    env = {e["name"]: e for e in app["properties"]["template"]["containers"][0]["env"]}
    expected = set(contract()["inventory"]) | set(contract()["inventory_platform"])
    assert not expected - set(env), f"inventory env missing {sorted(expected - set(env))}"
    for entry in env.values():
        assert "secretRef" not in entry
        for leaf in string_leaves(entry):
            for marker in SECRET_MARKERS:
                assert marker not in leaf.lower()
    assert env["POSTGRES_AUTH"]["value"] == "entra"
    assert env["POSTGRES_PREPARED_STATEMENTS"]["value"] == "true"
    assert resolve(doc, env["INVENTORY_GRPC_PORT"]["value"]["function"]["parameters"]["value_to_convert"]) == 50051
    assert resolve(doc, env["INVENTORY_HEALTH_PORT"]["value"]["function"]["parameters"]["value_to_convert"]) == 8081
    params = doc["parameters"]
    assert params["gremlinMode"]["default"] is False
    assert params["schrodingerCrashRate"]["default"] == "0"
    main_params = main_bicep()["parameters"]
    assert main_params["gremlinMode"]["default"] is False
    assert main_params["schrodingerCrashRate"]["default"] == "0"


def test_acr_pull_roles_for_the_image_users() -> None:
    doc = main_bicep()
    pulls = [
        resource_config(r)
        for r in resources_of_type(doc, "Microsoft.Authorization/roleAssignments")
        if role_definition_guid(doc, r) == ACR_PULL
    ]
    # the inventory app and the database-roles job both run the inventory image
    principals = {next(x for x in string_leaves(p["properties"]["principalId"]) if x.endswith("Identity"))
                  for p in pulls}
    assert principals == {"inventoryIdentity", "dbAdminIdentity"}
    assert {p["scope"] for p in pulls} == {"registry"}


# ------------------------------------------------------------------ PostgreSQL


def test_postgres_entra_only_pgbouncer_private() -> None:
    doc = module("postgres")
    server = one_resource(doc, "Microsoft.DBforPostgreSQL/flexibleServers")
    auth = server["properties"]["authConfig"]
    assert auth["activeDirectoryAuth"] == "Enabled"
    assert auth["passwordAuth"] == "Disabled"
    assert "administratorLoginPassword" not in server["properties"]
    assert server["properties"]["network"]["publicNetworkAccess"] == "Disabled"
    # PgBouncer is not offered on Burstable.
    tier = resolve(doc, server["sku"]["tier"])
    assert tier in ("GeneralPurpose", "MemoryOptimized")
    assert "Burstable" not in doc["parameters"]["skuTier"]["decorators"][0]["argument"]
    configs = [
        resource_config(r) for r in resources_of_type(doc, "Microsoft.DBforPostgreSQL/flexibleServers/configurations")
    ]
    pgbouncer = [c for c in configs if c["name"] == "pgbouncer.enabled"]
    assert len(pgbouncer) == 1 and pgbouncer[0]["properties"]["value"] == "true"
    # the apps prepare their statements (POSTGRES_PREPARED_STATEMENTS): PgBouncer must track them
    prepared = [c for c in configs if c["name"] == "pgbouncer.max_prepared_statements"]
    assert len(prepared) == 1 and int(prepared[0]["properties"]["value"]) > 0
    dbs = {
        resource_config(r)["name"]
        for r in resources_of_type(doc, "Microsoft.DBforPostgreSQL/flexibleServers/databases")
    }
    assert dbs == {"orders", "inventory"}
    assert resources_of_type(doc, "Microsoft.DBforPostgreSQL/flexibleServers/administrators")
    assert not resources_of_type(doc, "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules")


def test_postgres_sku_default_is_not_burstable() -> None:
    assert not module("postgres")["parameters"]["skuName"]["default"].startswith("Standard_B")
    assert not main_bicep()["parameters"]["postgresSkuName"]["default"].startswith("Standard_B")


# ------------------------------------------------------------------ monitoring + alert


def test_app_insights_is_workspace_based() -> None:
    doc = module("monitoring")
    ai = one_resource(doc, "Microsoft.Insights/components")
    assert ai["properties"]["WorkspaceResourceId"]
    assert one_resource(doc, "Microsoft.OperationalInsights/workspaces")


def test_response_time_alert_is_a_log_search_over_the_apps_own_spans() -> None:
    doc = module("alerts")
    assert not resources_of_type(doc, "Microsoft.Insights/metricAlerts")  # requests/duration may never be emitted
    alert = one_resource(doc, "Microsoft.Insights/scheduledQueryRules")
    assert alert["kind"] == "LogAlert"
    props = alert["properties"]
    assert props["scopes"] == ["appInsightsId"]
    assert props["windowSize"] == "PT1M" and props["evaluationFrequency"] == "PT1M"
    (criterion,) = props["criteria"]["allOf"]
    loaded = criterion["query"]["function"]
    assert loaded["type"] == "load_text_content"
    assert (INFRA / "modules" / loaded["parameters"]["file_path"]).is_file()
    assert criterion["metricMeasureColumn"] == "duration"
    assert criterion["timeAggregation"] == "Average"
    assert criterion["operator"] == "GreaterThan"
    assert resolve(doc, criterion["threshold"]) == 1000
    assert main_bicep()["modules"]["alerts"]["config"]["params"]["thresholdMilliseconds"] == 1000


# ------------------------------------------------------------------ outputs


def test_outputs_for_deploy_script() -> None:
    outputs = main_bicep()["outputs"]
    for name in (
        "checkoutBaseUrl",
        "functionAppName",
        "containerAppName",
        "postgresServerName",
        "functionIdentityName",
        "inventoryIdentityName",
        "serviceBusNamespace",
    ):
        assert name in outputs
    url = outputs["checkoutBaseUrl"]["value"]
    assert url.startswith("https://") and url.endswith("/api")


def test_workbook_has_the_dashboard_panels() -> None:
    doc = module("workbook")
    [workbook] = [r for r in doc["resources"].values() if "workbooks" in r["type"]]
    assert workbook["config"]["kind"] == "shared"
    loaded = workbook["config"]["properties"]["serializedData"]["function"]
    assert loaded["type"] == "load_text_content"
    data = json.loads((INFRA / "modules" / loaded["parameters"]["file_path"]).read_text())
    queries = {item["name"]: item["content"]["query"] for item in data["items"] if item["type"] == 3}
    assert {"response-time", "alert-state", "outcomes", "slow-path", "dependencies", "pending-age"} <= set(queries)
    assert "bin(timestamp, 30s)" in queries["response-time"] and "1000" in queries["response-time"]
    assert "'SLOW'" in queries["alert-state"] and "ago(30s)" in queries["alert-state"]
    assert main_bicep()["modules"]["workbook"]["config"]["params"]["appInsightsId"]


# ------------------------------------------------------------------ database roles (inside the VNet)


def test_database_roles_job_runs_in_the_internal_environment_as_the_entra_admin() -> None:
    doc = module("dbroles")
    job = one_resource(doc, "Microsoft.App/jobs")
    props = job["properties"]
    assert props["environmentId"] == "environmentId"  # the internal (VNet-injected) environment
    assert props["configuration"]["triggerType"] == "Manual"
    assert list(job["identity"]["userAssignedIdentities"]) == ["'${adminIdentityId}'"]
    container = props["template"]["containers"][0]
    assert container["command"] == ["python", "-m", "valerix_common.db_roles"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"PGHOST": "postgresFqdn", "PG_ADMIN_ROLE": "adminRoleName",
                   "AZURE_CLIENT_ID": "adminIdentityClientId", "DB_ROLE_GRANTS": "roleGrants"}
    source = (REPO_ROOT / "valerix_common" / "db_roles.py").read_text(encoding="utf-8")
    assert "pgaadauth_create_principal" in source and "port=5432" in source

    params = main_bicep()["modules"]["dbRoles"]["config"]["params"]
    assert "containerAppsEnvironment" in string_leaves(params["environmentId"])
    assert "dbAdminIdentity" in string_leaves(params["adminIdentityId"])
    assert params["roleGrants"] == "${functionIdentity.name}=orders;${inventoryIdentity.name}=inventory"
    assert params["image"] == "inventoryImage"  # the image that carries valerix_common + psycopg + azure-identity
    # the same identity is a PostgreSQL Entra administrator
    pg_params = main_bicep()["modules"]["postgres"]["config"]["params"]
    assert "dbAdminIdentity" in string_leaves(pg_params["automationAdminPrincipalId"])
    admins = [resource_config(r) for r in resources_of_type(module("postgres"),
                                                              "Microsoft.DBforPostgreSQL/flexibleServers/administrators")]
    automation = [a for a in admins if a["name"] == "automationAdminPrincipalId"]
    assert len(automation) == 1 and automation[0]["properties"]["principalType"] == "ServicePrincipal"


def test_database_roles_run_during_deployment_before_the_apps_and_never_open_the_server() -> None:
    doc = module("dbroles")
    script = one_resource(doc, "Microsoft.Resources/deploymentScripts")
    assert script["kind"] == "AzureCLI"
    assert script["properties"]["forceUpdateTag"] == "runTag"  # runs on every deployment (utcNow default)
    assert doc["parameters"]["runTag"]["default"]["function"]["type"] == "utc_now"
    script_file = script["properties"]["scriptContent"]["function"]["parameters"]["file_path"]
    text = (INFRA / "modules" / script_file).read_text(encoding="utf-8")
    assert "/start?api-version=" in text and "/executions/" in text and "exit 1" in text
    for opening in ("firewall", "public-access", "publicNetworkAccess", "psql"):
        assert opening not in text, f"the script must not {opening}: the SQL runs in the job, inside the VNet"
    assert "subnetIds" not in json.dumps(script)  # management plane only: it needs no network path to the server
    # the script's identity may start only this job
    assert _role_grants(doc) == {("job", "adminPrincipalId", "b24988ac-6180-42a0-ab88-20f7382dd24c")}
    mods = main_bicep()["modules"]
    assert "dbRoles" in mods["containerApps"]["config"]["dependsOn"]
    assert "dbRoles" in mods["functionApp"]["config"]["dependsOn"]
    server = one_resource(module("postgres"), "Microsoft.DBforPostgreSQL/flexibleServers")
    assert server["properties"]["network"]["publicNetworkAccess"] == "Disabled"
    for path in bicep_files():
        assert not resources_of_type(parse_bicep(path), "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules")


# ------------------------------------------------------------------ reconciler cadence


def test_reconciler_runs_every_few_minutes_in_azure() -> None:
    settings = _function_app_settings()
    doc = module("functionapp")
    schedule = resolve(doc, settings["RECONCILE_SCHEDULE"])
    seconds, minutes = schedule.split()[:2]
    assert seconds == "0" and minutes.startswith("*/") and int(minutes[2:]) >= 2, schedule
    code = (REPO_ROOT / "order_functions" / "interface" / "bus_functions.py").read_text(encoding="utf-8")
    assert f'env_str("RECONCILE_SCHEDULE", "{schedule}")' in code  # the same default when the setting is missing


# ------------------------------------------------------------------ bearer tokens


def test_the_dashboard_sign_in_settings_reach_the_function_app() -> None:
    settings = _function_app_settings()
    assert set(contract()["function_app_dashboard"]) <= set(settings)
    params = main_bicep()["modules"]["functionApp"]["config"]["params"]
    assert {"dashboardSigninClientId", "dashboardSigninAuthority", "dashboardSigninScope"} <= set(params)
    authority = main_bicep()["variables"]["signinAuthority"]["value"]
    assert "loginEndpoint" in authority and "tenantId" in authority and not authority.endswith("/v2.0")


def test_auth_settings_reach_both_apps() -> None:
    settings = _function_app_settings()
    assert set(contract()["function_app_auth"]) <= set(settings)
    _, app = _inventory_app()
    env = {e["name"]: e["value"] for e in app["properties"]["template"]["containers"][0]["env"]}
    # bound to [::] the inventory refuses to start without them (inventory_service/middleware/auth.py)
    assert set(contract()["inventory_auth"]) <= set(env)
    params = main_bicep()["modules"]["containerApps"]["config"]["params"]
    assert "functionIdentity" in params["allowedCallers"]
    assert main_bicep()["variables"]["tokenIssuer"]["value"].endswith("/v2.0")
