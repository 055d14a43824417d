"""The hosted pipeline's workflows: linted by actionlint and zizmor, and held to the rules they promise."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make venv` installs the dev extra")
    return path


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_both_workflows_exist() -> None:
    assert [p.name for p in FILES] == ["ci.yml", "deploy.yml"]


def test_actionlint_is_clean() -> None:
    result = subprocess.run([_tool("actionlint"), *map(str, FILES)], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_offline_is_clean() -> None:
    result = subprocess.run([_tool("zizmor"), "--offline", "--persona", "auditor", "--format", "plain",
                             str(WORKFLOWS)], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version() -> None:
    uses = [line.strip() for p in FILES for line in p.read_text().splitlines() if line.strip().startswith(("uses:",
                                                                                                         "- uses:"))]
    remote = [u for u in uses if "$/" not in u]
    assert remote, "no actions found"
    for line in remote:
        assert re.search(r"@[0-9a-f]{40}\s+#\s*v\d+\.\d+\.\d+$", line), f"not pinned to a SHA + version: {line}"


def test_permissions_are_least_privilege() -> None:
    for path in FILES:
        wf = _load(path)
        assert wf["permissions"] == {}, f"{path.name}: workflow-level permissions must be empty"
        for name, job in wf["jobs"].items():
            perms = job.get("permissions")
            assert perms is not None, f"{path.name}:{name} states no permissions"
            granted = {k for k, v in perms.items() if v != "none"}
            allowed = {"contents", "id-token"} if (path.name, name) == ("deploy.yml", "deploy") else {"contents"}
            assert granted <= allowed, f"{path.name}:{name} asks for {granted - allowed}"
            assert perms.get("contents") in (None, "read")
    deploy = _load(WORKFLOWS / "deploy.yml")["jobs"]["deploy"]
    assert deploy["permissions"]["id-token"] == "write"


def test_ci_runs_the_readme_commands_and_publishes_the_chaos_report() -> None:
    wf = _load(WORKFLOWS / "ci.yml")
    triggers = wf[True]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request", "workflow_call"} <= set(triggers)
    steps = wf["jobs"]["test"]["steps"]
    runs = [s.get("run", "") for s in steps]
    assert runs.index("make test") < runs.index("make chaos-ci")
    assert any("GITHUB_STEP_SUMMARY" in r and "slow-path" in r for r in runs)
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert ".artifacts/chaos/" in upload["with"]["path"]


def test_deploy_runs_after_ci_and_stores_no_secret() -> None:
    text = (WORKFLOWS / "deploy.yml").read_text()
    wf = _load(WORKFLOWS / "deploy.yml")
    assert wf[True]["push"]["branches"] == ["main"]
    assert wf["jobs"]["deploy"]["needs"] == "ci"
    assert "secrets." not in text, "OIDC only: no stored secret"
    script = "\n".join(s.get("run", "") for s in wf["jobs"]["deploy"]["steps"])
    for needed in ("az acr build", "az deployment group what-if", "az deployment group create", "make package",
                   "az functionapp deployment source config-zip", "az account get-access-token",
                   ".github/scripts/smoke_test.py"):
        assert needed in script, f"deploy.yml does not run {needed!r}"
    assert script.index("what-if") < script.index("az deployment group create") < script.index("config-zip")
    login = next(s for s in wf["jobs"]["deploy"]["steps"] if str(s.get("uses", "")).startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
