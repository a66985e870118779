#!/usr/bin/env bash
# Give ./.env every secret the compose stack needs, each a fresh random value, and
# leave the ones already there alone. `make up` runs it; nothing here has a default
# password, so a stack started from this repository never runs with a known one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ENV_FILE="${1:-.env}"
[[ -f "$ENV_FILE" ]] || cp .env.example "$ENV_FILE"

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

ensure() {
    local name=$1 value=$2
    if ! grep -qE "^${name}=.+" "$ENV_FILE"; then
        sed -i "/^${name}=\$/d" "$ENV_FILE"
        printf '%s=%s\n' "$name" "$value" >>"$ENV_FILE"
        added+=("$name")
    fi
}

added=()
ensure POSTGRES_PASSWORD "$(random_hex 24)"
ensure REDIS_PASSWORD "$(random_hex 24)"
ensure RABBITMQ_PASSWORD "$(random_hex 24)"
ensure FLOWER_BASIC_AUTH "admin:$(random_hex 16)"
ensure ADMIN_TOKEN "$(random_hex 32)"
if ((${#added[@]})); then
    echo "Wrote new secrets to $ENV_FILE: ${added[*]} (see them there)"
fi
