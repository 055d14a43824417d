# Valerix: `make up` runs the whole system on this machine, `make test` runs the tests. Both install what they need.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.txt | sha1sum | cut -c1-12)

.PHONY: up test lint typecheck check proto proto-check chaos chaos-ci bench browsers backup bench-reserve clean \
	package requirements pgbouncer

# -c requirements.txt: the tests run the exact versions that ship (requirements.txt is generated from this venv by
# `make requirements`; tests/unit/common/test_requirements.py fails when the two drift).
$(STAMP): pyproject.toml requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local]' -c requirements.txt
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/python -m devstack up

test: $(STAMP)
	$(BIN)/python -m devstack.browsers ensure
	$(BIN)/python -m devstack.pgbouncer ensure
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy .

proto: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. \
		--mypy_out=. --mypy_grpc_out=. protos/inventory.proto

chaos: $(STAMP)
	$(BIN)/python -m devstack.chaos $(ARGS)

chaos-ci: $(STAMP)
	$(BIN)/python -m devstack.chaos --profile ci $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m devstack.bench $(ARGS)

clean:
	rm -rf .data .artifacts .pytest_cache .mypy_cache .ruff_cache

backup: $(STAMP)
	$(BIN)/python -m devstack.backup run

bench-reserve: $(STAMP)
	$(BIN)/python -m devstack.bench.reserve_grpc $(ARGS)

# After changing [project].dependencies: install, then re-pin both lock files from the venv.
requirements: $(STAMP)
	$(BIN)/python -m devstack.requirements lock

# The function app's deployment zip, built as Flex Consumption's remote build would, then imported and indexed.
package: $(STAMP)
	$(BIN)/python -m devstack.package build

pgbouncer: $(STAMP)
	$(BIN)/python -m devstack.pgbouncer ensure
