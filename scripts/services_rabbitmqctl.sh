#!/usr/bin/env bash
# rabbitmqctl of the RabbitMQ that `make services` runs, for `make test-rabbitmq` on a
# machine without RabbitMQ of its own: TEST_RABBITMQCTL=scripts/services_rabbitmqctl.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec docker compose -f docker-compose.services.yml exec -T rabbitmq rabbitmqctl "$@"
