# Every routine task. `make help` lists them. Needs only python3 (3.11+) and make.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install run migrate test test-pg test-cluster lint lint-spec format typecheck openapi check bench bench-profile clean chromium axe ts-client mutants

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON) --quiet
	@touch $@

install: $(VENV)/.installed ## Install the service and its tools into .venv (from uv.lock)

migrate: install ## Apply database migrations (DATABASE_URL, default SQLite in ./data)
	$(BIN)/alembic upgrade head

run: migrate ## Install, migrate and serve on HOST:PORT (default 127.0.0.1:8000)
	$(BIN)/uvicorn api.main:app --host $(HOST) --port $(PORT) --no-access-log --timeout-graceful-shutdown 20 \
		--forwarded-allow-ips "$${JOURNAL_TRUSTED_PROXIES:-127.0.0.1}"

test: install chromium axe ts-client ## Install and run the whole suite (SQLite; TEST_DATABASE_URL=postgresql+asyncpg://... for PostgreSQL)
	$(BIN)/pytest $(PYTEST_ARGS)

test-cluster: install ## Three nodes behind Debian's HAProxy (deploy/), PostgreSQL and Redis on loopback: kill -9, rolling key rotation; prints acknowledged / lost / duplicated
	@command -v haproxy >/dev/null 2>&1 || { \
		echo "installing haproxy (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
	CLUSTER_REDIS_URL=$${CLUSTER_REDIS_URL:-redis://127.0.0.1:6379/0} $(BIN)/python -m tests.cluster

chromium: ## Debian's Chromium for the browser tests, installed with apt-get when missing
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

axe: tests/axe/node_modules/axe-core/axe.min.js ## axe-core for the browser tests' accessibility checks (npm ci, pinned in tests/axe/package-lock.json)

tests/axe/node_modules/axe-core/axe.min.js: tests/axe/package.json tests/axe/package-lock.json
	npm ci --prefix tests/axe --no-audit --no-fund --loglevel=error
	@touch $@

ts-client: openapi/ts-client/node_modules/.package-lock.json ## TypeScript, openapi-typescript and openapi-fetch for the integrator's TypeScript check (npm ci, pinned in openapi/ts-client/package-lock.json)

openapi/ts-client/node_modules/.package-lock.json: openapi/ts-client/package.json openapi/ts-client/package-lock.json
	npm ci --prefix openapi/ts-client --no-audit --no-fund --loglevel=error
	@touch $@

test-pg: install chromium axe ts-client ## The suite against the local PostgreSQL (a fresh database, dropped afterwards)
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/postgres} $(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint-spec: ## Lint openapi/openapi.json with the pinned Redocly and Spectral CLIs (needs Node 20.19+ and npm)
	bash openapi/lint/lint-spec.sh

format: install ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict
	$(BIN)/mypy

openapi: install ## Regenerate openapi/openapi.json from the app
	$(BIN)/python -m api.cli openapi > openapi/openapi.json

check: lint typecheck lint-spec test ## Lint, type-check, lint the spec and test

bench: install ## Load-test the service against a raw Starlette+asyncpg baseline on the local PostgreSQL (~9 min; appends to bench/RESULTS.md)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-profile: install ## py-spy profile of one worker under the bench's load, scenarios 1-3 (needs py-spy on PATH)
	$(BIN)/python -m bench.profile $(BENCH_ARGS)

# Mutation testing: a bound on the run (seconds), and optionally which mutants, as mutmut globs
# (MUTANTS="api.grants.repository.* api.assessments.scoring.*"); cached in ./mutants between runs.
# The second full run (1732 mutants, 2026-12-08) had run 1482 of them when stopped after an hour
# on the shared 2-core machine (10 minutes of it collecting which tests call what): 90 minutes
# is the bound that lets a full run finish there.
MUTANTS ?=
MUTANTS_TIME ?= 5400

mutants: install ## Mutation run over access, scoring, idempotency, tokens, erasure (slow, not in CI): docs/mutants/last-run.md
	-TEST_DATABASE_URL= nice -n 15 timeout $(MUTANTS_TIME) $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/python -m tests.mutants.report > docs/mutants/last-run.md
	@echo "survivors: docs/mutants/last-run.md; triage them in docs/mutants/README.md"

clean: ## Remove the virtualenvs and caches (keeps ./data)
	rm -rf .uv $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis mutants
