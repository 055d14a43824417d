"""infra/README.md's deployment walk-through refers only to things that exist: deployment outputs, make targets,
files, and the headers the API needs."""

from __future__ import annotations

import re

from tests.unit.infra._helpers import INFRA, REPO_ROOT, main_bicep

README = (INFRA / "README.md").read_text(encoding="utf-8")


def test_every_step_from_an_empty_subscription_is_there_in_order() -> None:
    steps = ["az login", "az account set", "az provider register", "az group create", "az acr create",
             "az acr build", "az deployment group what-if", "az deployment group create", "\nmake package",
             "az functionapp deployment source config-zip", "az functionapp keys list", "curl -fsS $API/health",
             "-X POST $API/orders", "az group delete"]
    walk = README[README.index("## Deploy"):]
    positions = [walk.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p == -1]
    assert positions == sorted(positions), "steps out of order"


def test_outputs_used_exist() -> None:
    used = set(re.findall(r"\$\(out (\w+)\)", README)) | set(re.findall(r"^out (\w+)", README, re.MULTILINE))
    assert used, "the walk-through reads deployment outputs"
    missing = used - set(main_bicep()["outputs"])
    assert not missing, missing


def test_smoke_test_sends_the_function_key_and_a_bearer_token() -> None:
    for call in re.findall(r"curl [^\n]*\$API/(?:products|orders)[^\n]*", README):
        assert '-H "x-functions-key: $KEY"' in call, call
        assert '-H "Authorization: Bearer $TOKEN"' in call, call
    assert "public access" not in README.lower().replace("public access cannot even be enabled", "")


def test_files_and_make_targets_exist() -> None:
    for path in re.findall(r"`((?:infra|inventory_service|valerix_common)/[\w./-]+\.\w+)`", README):
        assert (REPO_ROOT / path).is_file(), path
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"make (\w+)", README):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
