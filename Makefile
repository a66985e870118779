.DEFAULT_GOAL := help
SHELL := /bin/bash
COMPOSE ?= docker compose
# uv runs everything; where it is missing, `make test` and `make dev` install it with pip.
UV ?= $(if $(shell command -v uv 2>/dev/null),uv,python3 -m uv)

# make up BROKER=rabbitmq: RabbitMQ is the broker (the compose profile `rabbitmq`).
ifeq ($(BROKER),rabbitmq)
COMPOSE := COMPOSE_PROFILES=rabbitmq \
	COMPOSE_BROKER_URL="amqp://app:$$(sed -n 's/^RABBITMQ_PASSWORD=//p' .env)@rabbitmq:5672//" \
	$(COMPOSE)
endif

.PHONY: help secrets up down scale logs logs-worker logs-api logs-relay logs-beat logs-flower ps dev migrate test test-rabbitmq faults lint fmt smoke bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

secrets: ## Write random passwords and tokens for the compose stack to .env (keeps existing ones)
	@bash scripts/ensure_secrets.sh

up: secrets ## Build and start the whole stack, waiting until healthy (BROKER=rabbitmq for RabbitMQ)
	$(COMPOSE) up -d --build --wait

down: secrets ## Stop the stack (add ARGS=-v to drop its volumes)
	$(COMPOSE) down $(ARGS)

scale: secrets ## Run N workers (default 3): make scale N=5
	$(COMPOSE) up -d --scale worker=$(or $(N),3) --wait

logs: secrets ## Follow the logs of every service
	$(COMPOSE) logs -f

logs-worker: secrets ## Follow the worker's logs
	$(COMPOSE) logs -f worker

logs-api: secrets ## Follow the API's logs
	$(COMPOSE) logs -f api

logs-relay: secrets ## Follow the outbox relay's logs
	$(COMPOSE) logs -f relay

logs-beat: secrets ## Follow Celery beat's logs
	$(COMPOSE) logs -f beat

logs-flower: secrets ## Follow Flower's logs
	$(COMPOSE) logs -f flower

ps: secrets ## Show the stack's services and their health
	$(COMPOSE) ps

dev: ## Run API (port 8000), worker and relay locally against the services in .env
	@test -f .env || cp .env.example .env
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --quiet
	$(UV) run python -m app.core.migrate
	@trap 'kill 0' EXIT INT TERM; \
	$(UV) run celery -A app.worker.celery_app worker -l info -c 2 & \
	$(UV) run python -m app.relay & \
	$(UV) run uvicorn app.main:app --reload --port 8000 & \
	wait

migrate: ## Create the database if missing and apply the migrations
	$(UV) run python -m app.core.migrate

test: ## Run the test suite against the local PostgreSQL and Redis
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --quiet
	$(UV) run pytest

test-rabbitmq: ## The same suite on the local RabbitMQ (5672; a vhost per run, made with rabbitmqctl)
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --quiet
	TEST_BROKER=rabbitmq $(UV) run pytest

lint: ## ruff, mypy and the import contracts
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports

fmt: ## Format and autofix
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

bench: ## Benchmark the durable job path against raw Celery (~7 min; QUICK=1 for ~1 min)
	$(UV) run python -m bench.run $(if $(QUICK),--quick)

faults: ## The fault-injection suite and its table (~10 min; REPEAT=1 for CI's ~9 min run)
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --quiet
	FAULT_REPEAT=$(or $(REPEAT),20) FAULT_TABLE=faults-table.md $(UV) run pytest tests/faults -m faults

smoke: ## Start the compose stack, exercise it over HTTP, tear it down (BROKER=rabbitmq too)
	SMOKE_BROKER=$(or $(BROKER),redis) bash scripts/smoke.sh
