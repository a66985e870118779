.DEFAULT_GOAL := help
SHELL := /bin/bash
COMPOSE ?= docker compose
# uv runs everything; scripts/uv.sh installs it first on a machine that has none.
UV ?= bash scripts/uv.sh
# The local PostgreSQL, Redis and RabbitMQ of `make services`, for `make dev` and `make test`.
SERVICES := $(COMPOSE) -f docker-compose.services.yml
# promtool: the machine's (Debian's package `prometheus`), else the one in compose's image.
PROMETHEUS_IMAGE = $(shell sed -n 's/^ *image: *\(prom\/prometheus:.*\)/\1/p' docker-compose.yml)
PROMTOOL ?= $(or $(shell command -v promtool 2>/dev/null),docker run --rm \
	-v "$(CURDIR)/monitoring:/src/monitoring:ro" -w /src --entrypoint promtool $(PROMETHEUS_IMAGE))

# make up BROKER=rabbitmq: RabbitMQ is the broker (the compose profile `rabbitmq`).
ifeq ($(BROKER),rabbitmq)
COMPOSE := COMPOSE_PROFILES=rabbitmq \
	COMPOSE_BROKER_URL="amqp://app:$$(sed -n 's/^RABBITMQ_PASSWORD=//p' .env)@rabbitmq:5672//" \
	$(COMPOSE)
endif

.PHONY: help secrets up down scale logs logs-worker logs-api logs-relay logs-flower ps \
	venv services services-down dev migrate test test-rabbitmq faults lint fmt smoke bench \
	monitoring-check

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

logs-relay: secrets ## Follow the relay's logs (outbox, scheduled jobs, periodic schedules)
	$(COMPOSE) logs -f relay

logs-flower: secrets ## Follow Flower's logs
	$(COMPOSE) logs -f flower

ps: secrets ## Show the stack's services and their health
	$(COMPOSE) ps

venv: ## Install the project and its tools into .venv from uv.lock (and uv itself, where missing)
	$(UV) sync --frozen --quiet

services: ## Start PostgreSQL, Redis and RabbitMQ in Docker on 127.0.0.1, for make dev and make test
	$(SERVICES) up -d --wait

services-down: ## Stop the services of make services (add ARGS=-v to drop their data)
	$(SERVICES) down $(ARGS)

dev: venv ## Run API (port 8000), worker and relay locally against the services in .env
	@test -f .env || cp .env.example .env
	$(UV) run python -m app.core.migrate
	@trap 'kill 0' EXIT INT TERM; \
	$(UV) run celery -A app.worker.celery_app worker -l info -c 2 & \
	$(UV) run python -m app.relay & \
	$(UV) run uvicorn app.main:app --reload --port 8000 & \
	wait

migrate: venv ## Create the database if missing and apply the migrations
	$(UV) run python -m app.core.migrate

test: venv ## Run the test suite against PostgreSQL and Redis on 127.0.0.1 (make services starts them)
	$(UV) run pytest

test-rabbitmq: venv ## The same suite on the local RabbitMQ (5672; a vhost per run, made with rabbitmqctl)
	TEST_BROKER=rabbitmq $(UV) run pytest

lint: venv ## ruff, mypy and the import contracts
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports

monitoring-check: ## Check the Prometheus config and alert rules; run the rules' unit tests (promtool)
	$(PROMTOOL) check config monitoring/prometheus/prometheus.yml
	$(PROMTOOL) test rules monitoring/prometheus/alerts_test.yml

fmt: venv ## Format and autofix
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

bench: venv ## Benchmark the durable job path against raw Celery (~7 min; QUICK=1 for ~1 min)
	$(UV) run python -m bench.run $(if $(QUICK),--quick)

faults: venv ## The fault-injection suite and its table (~10 min; REPEAT=1 for CI's ~9 min run; BROKER=rabbitmq; FAULTS=<test files>)
	TEST_BROKER=$(or $(BROKER),redis) FAULT_REPEAT=$(or $(REPEAT),20) \
		FAULT_TABLE=faults-table$(if $(filter rabbitmq,$(BROKER)),-rabbitmq).md \
		$(UV) run pytest $(or $(FAULTS),tests/faults) -m faults

smoke: ## Start the compose stack, exercise it over HTTP, tear it down (BROKER=rabbitmq too)
	SMOKE_BROKER=$(or $(BROKER),redis) $(UV) run python -m tests.smoke
