#!/usr/bin/env bash
# Smoke test of the Docker Compose stack (`make smoke`), run from anywhere in the repo.
#
# Builds and starts the whole stack under its own project name and port, with an env
# file of its own written as a developer's .env would be (LOG_FORMAT=text, among
# others), then over HTTP: creates a user and waits for its welcome-email job to
# succeed; checks that settings written to the env file reach the worker, then changes
# one there (every send fails) and watches a job go through its 3 retries to `failed`;
# checks that the ledger page is served and that the JSON it reads lists that failed
# job (the page's script itself is tested in Chromium by tests/browser/); sends 20
# oversized bodies, each of which must get its 413; scales to 3 workers and checks
# that all of them answer; and finally that every line every app container logged is
# JSON. The stack and its volumes are removed at the end, whatever happens
# (SMOKE_KEEP=1 leaves it running).
#
# Needs: docker with Compose v2, curl, python3 (JSON and timestamps).
# Knobs: COMPOSE_PROJECT_NAME (durable-jobs-smoke), SMOKE_API_PORT (18000),
#        SMOKE_FLOWER_PORT (15555), SMOKE_TIMEOUT (seconds to wait for a log line, 60),
#        SMOKE_KEEP (0), SMOKE_BROKER (redis, or rabbitmq: the compose profile).
set -euo pipefail
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SMOKE_BROKER="${SMOKE_BROKER:-redis}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-durable-jobs-smoke-$SMOKE_BROKER}"
export API_PORT="${SMOKE_API_PORT:-18000}"
export FLOWER_PORT="${SMOKE_FLOWER_PORT:-15555}"
# Fresh secrets each run: the jobs API is on for this stack only.
random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
ADMIN_TOKEN="smoke-$(random_hex)" REDIS_PASSWORD="$(random_hex)" POSTGRES_PASSWORD="$(random_hex)"
RABBITMQ_PASSWORD="$(random_hex)" FLOWER_PASSWORD="$(random_hex)"
export ADMIN_TOKEN REDIS_PASSWORD POSTGRES_PASSWORD RABBITMQ_PASSWORD
export FLOWER_BASIC_AUTH="smoke:$FLOWER_PASSWORD"
case "$SMOKE_BROKER" in
redis) export COMPOSE_PROFILES="" COMPOSE_BROKER_URL="" ;;
rabbitmq)
    export COMPOSE_PROFILES=rabbitmq
    export COMPOSE_BROKER_URL="amqp://app:${RABBITMQ_PASSWORD}@rabbitmq:5672//"
    ;;
*) echo "SMOKE_BROKER must be redis or rabbitmq, not $SMOKE_BROKER" >&2 && exit 2 ;;
esac
EMAIL_RETRY_BACKOFF=1 EMAIL_SEND_SECONDS=0.5
TIMEOUT="${SMOKE_TIMEOUT:-60}"
ORIGIN="http://127.0.0.1:${API_PORT}"
BASE="$ORIGIN/api/v1"
TASK=users.send_welcome_email

TMP="$(mktemp -d)"
SUMMARY=()

# The stack's env file, in place of ./.env (which this test never reads): what
# `make up` would write, plus values a developer's .env would hold. Compose reads it
# for ${...} too, so nothing in ./.env can change the test.
export ENV_FILE="$TMP/smoke.env"
{
    cat .env.example
    printf '%s\n' LOG_FORMAT=text LOG_LEVEL=INFO EMAIL_SIMULATED_FAILURES=0 EMAIL_MAX_RETRIES=3 \
        "EMAIL_RETRY_BACKOFF=$EMAIL_RETRY_BACKOFF" "EMAIL_SEND_SECONDS=$EMAIL_SEND_SECONDS" \
        JOB_RETENTION_DAYS=9 WORKER_FORGET_AFTER_SECONDS=1234 \
        "POSTGRES_PASSWORD=$POSTGRES_PASSWORD" "REDIS_PASSWORD=$REDIS_PASSWORD" \
        "RABBITMQ_PASSWORD=$RABBITMQ_PASSWORD" "FLOWER_BASIC_AUTH=$FLOWER_BASIC_AUTH" \
        "ADMIN_TOKEN=$ADMIN_TOKEN"
} >"$ENV_FILE"
# set_env NAME VALUE: change a setting in the env file, as a user edits .env.
set_env() { sed -i "s/^$1=.*/$1=$2/" "$ENV_FILE"; }
# worker_setting NAME: the value the worker's Settings hold.
worker_setting() {
    compose exec -T worker python -c \
        "import sys; from app.core.config import settings; print(getattr(settings, sys.argv[1]))" "$1"
}

say() { printf '\n==> %s\n' "$*"; }
fail() {
    printf '\nsmoke: FAIL: %s\n' "$*" >&2
    exit 1
}
compose() { docker compose --ansi never --env-file "$ENV_FILE" "$@"; }
# Some Compose versions put terminal escapes (ESC[2K) before log lines even without a tty.
ESC=$'\e'
strip_ansi() { sed "s/${ESC}\[[0-9;]*[A-Za-z]//g"; }
service_logs() { compose logs --no-color "$@" 2>/dev/null | strip_ansi; }
now() { python3 -c 'import time; print(f"{time.time():.3f}")'; }
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ $rc -ne 0 ]]; then
        printf '\nsmoke: failed (exit %d); the stack as it was:\n' "$rc" >&2
        compose ps -a >&2 || true
        printf '\n--- last log lines of every service ---\n' >&2
        service_logs --tail 60 >&2 || true
    fi
    if [[ "${SMOKE_KEEP:-0}" == 1 ]]; then
        printf '\nSMOKE_KEEP=1: the stack is still up (docker compose -p %s down -v to remove it)\n' \
            "$COMPOSE_PROJECT_NAME"
    else
        say "Removing the stack and its volumes"
        compose down -v --remove-orphans --timeout 30 >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# http METHOD PATH [JSON]: sets STATUS, BODY (also in $TMP/body) and SECONDS_TAKEN.
http() {
    local method=$1 path=$2 data=${3:-} out
    local args=(-sS -o "$TMP/body" -w '%{http_code} %{time_total}' -X "$method"
        -H "Authorization: Bearer $ADMIN_TOKEN" --max-time 10)
    [[ -n "$data" ]] && args+=(-H 'Content-Type: application/json' --data "$data")
    out="$(curl "${args[@]}" "$BASE$path")" || fail "$method $path: curl failed"
    STATUS="${out%% *}"
    SECONDS_TAKEN="${out#* }"
    BODY="$(cat "$TMP/body")"
}

# page PATH: GET a file of the ledger page, without the token (it holds no data);
# sets PAGE_STATUS, the body in $TMP/page.
page() {
    PAGE_STATUS="$(curl -sS -o "$TMP/page" -w '%{http_code}' --max-time 10 "$ORIGIN$1")" ||
        fail "GET $1: curl failed"
}

# json EXPR: evaluate a Python expression on the last response body, bound to `j`.
json() {
    python3 -c 'import json, sys; j = json.load(open(sys.argv[2])); v = eval(sys.argv[1]); print(v if v is not None else "")' \
        "$1" "$TMP/body"
}

worker_logs() { service_logs --timestamps --no-log-prefix worker; }

# wait_for_log TEXT: wait until a worker log line contains TEXT; prints that line
# (prefixed with Docker's RFC 3339 timestamp).
wait_for_log() {
    local text=$1 deadline=$((SECONDS + TIMEOUT)) logs line
    while ((SECONDS < deadline)); do
        logs="$(worker_logs)" || true
        if line="$(grep -F -m1 -- "$text" <<<"$logs")"; then
            printf '%s\n' "$line"
            return 0
        fi
        sleep 0.5
    done
    fail "no worker log line with '$text' within ${TIMEOUT}s"
}

# Epoch seconds of a line from wait_for_log (Docker's timestamp, always UTC).
log_time() {
    python3 - "$1" <<'PY'
import re, sys
from datetime import datetime, timezone
# 2026-11-29T06:47:46.279123456Z, as `docker compose logs --timestamps` writes it.
found = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", sys.argv[1])
if not found:
    sys.exit(f"no Docker timestamp in log line: {sys.argv[1]!r}")
base = datetime.strptime(found[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
print(f"{base.timestamp() + float(found[2] or 0):.3f}")
PY
}

create_user() {
    local email="smoke-$1-$RANDOM@example.com"
    POST_AT="$(now)"
    http POST /users "{\"email\": \"$email\", \"full_name\": \"Smoke Test $1\"}"
    [[ "$STATUS" == 2* ]] || fail "POST /users answered $STATUS: $BODY"
    USER_ID="$(json 'j["id"]')"
    JOB_ID="$(json 'j["welcome_email_job_id"]')"
    [[ -n "$USER_ID" && -n "$JOB_ID" ]] || fail "POST /users: no id or job id in $BODY"
    echo "POST /users -> $STATUS in ${SECONDS_TAKEN}s: user $USER_ID, job $JOB_ID"
}

show_job_lines() {
    echo "--- docker compose logs worker | grep $1 ---"
    service_logs worker | grep -F -- "$1" || true
    echo "---"
}

command -v docker >/dev/null || fail "docker is not installed"
docker compose version >/dev/null 2>&1 || fail "Docker Compose v2 (docker compose) is missing"
command -v curl >/dev/null || fail "curl is not installed"
command -v python3 >/dev/null || fail "python3 is not installed"

say "Starting the stack (project $COMPOSE_PROJECT_NAME, broker $SMOKE_BROKER, API on port $API_PORT)"
compose down -v --remove-orphans >/dev/null 2>&1 || true # leftovers of an aborted run
t0="$(now)"
compose up -d --build --wait || fail "the stack did not become healthy"
up_seconds="$(elapsed "$t0" "$(now)")"
compose ps
SUMMARY+=("stack build + start until healthy: ${up_seconds}s")

say "Every service is healthy (migrate ran once and exited 0)"
compose ps -a --format json >"$TMP/ps.json"
python3 - "$TMP/ps.json" "$SMOKE_BROKER" <<'PY' || fail "not every service is healthy"
import json, sys
text = open(sys.argv[1]).read().strip()
# One JSON array (older Compose) or one object per line (newer).
rows = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines()]
problems = []
for row in rows:
    service, state, health = row["Service"], row["State"], row.get("Health") or ""
    exit_code = row.get("ExitCode")
    print(f"  {service}: {state} {health}".rstrip())
    if service == "migrate":
        if state != "exited" or exit_code != 0:
            problems.append(f"migrate: {state}, exit code {exit_code}")
    elif state != "running" or health != "healthy":
        problems.append(f"{service}: {state} {health or 'without a health check'}")
expected = {"db", "redis", "migrate", "api", "worker", "relay", "flower"}
if sys.argv[2] == "rabbitmq":
    expected.add("rabbitmq")
missing = sorted(expected - {row["Service"] for row in rows})
if missing:
    problems.append(f"missing services: {missing}")
sys.exit("; ".join(problems) or None)
PY

say "Exposure: no broker or database port on the host; the app runs as a non-root user"
published_ports=(db:5432 redis:6379)
[[ "$SMOKE_BROKER" == rabbitmq ]] && published_ports+=(rabbitmq:5672)
for service_port in "${published_ports[@]}"; do
    if host_port="$(compose port "${service_port%%:*}" "${service_port#*:}" 2>/dev/null)" &&
        [[ -n "$host_port" && "$host_port" != ":0" ]]; then
        fail "$service_port is published on the host as $host_port"
    fi
done
for service in api worker relay flower; do
    uid="$(compose exec -T "$service" id -u)" || fail "docker compose exec $service id -u failed"
    [[ "$uid" != 0 ]] || fail "$service runs as root"
done
redis_reply="$(compose exec -T redis env -u REDISCLI_AUTH redis-cli ping 2>&1 || true)"
[[ "$redis_reply" == *NOAUTH* ]] || fail "Redis answered a client without its password: $redis_reply"
echo "not published: ${published_ports[*]}; api, worker, relay, flower run as non-root; Redis: $redis_reply"

say "Metrics: /metrics answers in Prometheus format"
metrics="$(curl -sS --max-time 10 "http://127.0.0.1:${API_PORT}/metrics")" || fail "GET /metrics failed"
grep -q '^ledger_up 1' <<<"$metrics" || fail "/metrics: no 'ledger_up 1' line"
grep -q '^broker_up 1' <<<"$metrics" || fail "/metrics: no 'broker_up 1' line"
echo "$(grep -c '^[a-z]' <<<"$metrics") samples, ledger_up 1, broker_up 1"

say "Flower asks for a password"
FLOWER="http://127.0.0.1:${FLOWER_PORT}"
anonymous="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$FLOWER/")" || fail "Flower: curl failed"
[[ "$anonymous" == 401 ]] || fail "Flower without credentials answered $anonymous, not 401"
wrong="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -u smoke:wrong "$FLOWER/")"
[[ "$wrong" == 401 ]] || fail "Flower with a wrong password answered $wrong, not 401"
right="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -u "$FLOWER_BASIC_AUTH" "$FLOWER/workers")"
[[ "$right" == 200 ]] || fail "Flower with the password answered $right, not 200"
metrics_anonymous="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$FLOWER/metrics")"
[[ "$metrics_anonymous" == 401 ]] ||
    fail "Flower's /metrics without credentials answered $metrics_anonymous, not 401"
echo "Flower: 401 without or with a wrong password (/metrics too), 200 with it"
SUMMARY+=("every service healthy; no broker or database port published; non-root; Redis wants its password; /metrics answers; Flower asks for a password")

say "Health probes"
http GET /health
[[ "$STATUS" == 200 ]] || fail "GET /health answered $STATUS: $BODY"
http GET /health/ready
[[ "$STATUS" == 200 ]] || fail "GET /health/ready answered $STATUS: $BODY"
echo "ready: $BODY"
http GET /health/workers
[[ "$STATUS" == 200 ]] || fail "GET /health/workers answered $STATUS: $BODY"
workers="$(json 'sum(w["state"] == "ok" for w in j["workers"])')"
((workers >= 1)) || fail "GET /health/workers lists no worker in state ok: $BODY"
echo "workers: $BODY"

say "Happy path: a new user's welcome email is sent by the worker"
create_user ok
ok_job=$JOB_ID ok_user=$USER_ID ok_post_at=$POST_AT ok_post_seconds=$SECONDS_TAKEN
received="$(wait_for_log "Task $TASK[$ok_job] received")"
started="$(wait_for_log "Job $ok_job ($TASK) attempt 1 started")"
succeeded="$(wait_for_log "Job $ok_job ($TASK) succeeded on attempt 1")"
received_at="$(log_time "$received")"
started_at="$(log_time "$started")"
succeeded_at="$(log_time "$succeeded")"
to_received="$(elapsed "$ok_post_at" "$received_at")"
to_start="$(elapsed "$ok_post_at" "$started_at")"
to_done="$(elapsed "$ok_post_at" "$succeeded_at")"
show_job_lines "$ok_job"
http GET "/users/$ok_user"
[[ "$STATUS" == 200 ]] || fail "GET /users/$ok_user answered $STATUS: $BODY"
[[ -n "$(json 'j["welcome_email_sent_at"]')" ]] ||
    fail "the job succeeded but welcome_email_sent_at is still null: $BODY"
http GET "/jobs/$ok_job"
[[ "$STATUS" == 200 ]] || fail "GET /jobs/$ok_job answered $STATUS: $BODY"
[[ "$(json 'j["state"]')/$(json 'j["attempts"]')" == succeeded/1 ]] ||
    fail "job $ok_job should be succeeded after 1 attempt: $BODY"
echo "job $ok_job: succeeded on attempt 1; user $ok_user has welcome_email_sent_at set"
printf 'POST /users %ss | enqueue->received %ss | enqueue->start %ss | enqueue->done %ss\n' \
    "$ok_post_seconds" "$to_received" "$to_start" "$to_done"
SUMMARY+=("POST /users response time: ${ok_post_seconds}s")
SUMMARY+=("enqueue->start (POST sent to 'attempt 1 started'): ${to_start}s (received after ${to_received}s)")
SUMMARY+=("enqueue->succeeded: ${to_done}s (EMAIL_SEND_SECONDS=$EMAIL_SEND_SECONDS)")

say "Settings: the env file's values reach the worker, and so does a change to one"
for setting in job_retention_days:9.0 worker_forget_after_seconds:1234.0 log_format:json; do
    seen="$(worker_setting "${setting%%:*}")" || fail "could not read the worker's settings"
    [[ "$seen" == "${setting#*:}" ]] || fail "the worker has ${setting%%:*}=$seen, not ${setting#*:}"
done
echo "worker: JOB_RETENTION_DAYS=9 and WORKER_FORGET_AFTER_SECONDS=1234 from the env file;"
echo "        LOG_FORMAT=json although the env file says text"

say "Failure path: the worker's mail server fails 4 times (3 retries, then failed)"
t0="$(now)"
set_env EMAIL_SIMULATED_FAILURES 4
compose up -d --no-deps --wait worker ||
    fail "the worker did not come back healthy with EMAIL_SIMULATED_FAILURES=4"
seen="$(worker_setting email_simulated_failures)"
[[ "$seen" == 4 ]] || fail "EMAIL_SIMULATED_FAILURES=4 in the env file, but the worker has $seen"
echo "EMAIL_SIMULATED_FAILURES=4 written to the env file; the worker was recreated with it" \
    "in $(elapsed "$t0" "$(now)")s"
SUMMARY+=("settings: the env file's values reach the worker, and a changed one after compose up")
create_user failing
bad_job=$JOB_ID bad_post_at=$POST_AT
wait_for_log "Task $TASK[$bad_job] received" >/dev/null
for retry in 1 2 3; do
    line="$(wait_for_log "Job $bad_job ($TASK) attempt $retry failed (ConnectionError")"
    [[ "$line" == *"retry $retry of 3"* ]] || fail "attempt $retry did not schedule retry $retry of 3: $line"
    echo "attempt $retry failed, retry $retry of 3 scheduled"
done
final="$(wait_for_log "Job $bad_job ($TASK) failed on attempt 4")"
failed_at="$(log_time "$final")"
to_failed="$(elapsed "$bad_post_at" "$failed_at")"
show_job_lines "$bad_job"
retry_lines="$(service_logs worker | grep -cF "Task $TASK[$bad_job] retry: Retry in" || true)"
[[ "$retry_lines" == 3 ]] || fail "expected 3 Celery 'retry: Retry in' lines for $bad_job, saw $retry_lines"
http GET "/jobs/$bad_job"
[[ "$STATUS" == 200 ]] || fail "GET /jobs/$bad_job answered $STATUS: $BODY"
state="$(json 'j["state"]')" attempts="$(json 'j["attempts"]')" last_error="$(json 'j["last_error"]')"
[[ "$state" == failed && "$attempts" == 4 ]] ||
    fail "job $bad_job should be failed after 4 attempts, is $state after $attempts: $BODY"
[[ "$last_error" == *ConnectionError* ]] || fail "job $bad_job: unexpected last_error: $last_error"
echo "job $bad_job: state=$state attempts=$attempts last_error=$last_error"
SUMMARY+=("failing job: 3 retries then failed on attempt 4, ${to_failed}s after the POST (EMAIL_RETRY_BACKOFF=$EMAIL_RETRY_BACKOFF)")

say "Ledger page: served, and the JSON it reads lists the failed job"
page /admin/jobs
[[ "$PAGE_STATUS" == 200 ]] || fail "GET /admin/jobs answered $PAGE_STATUS"
grep -qF '<title>Job ledger</title>' "$TMP/page" || fail "GET /admin/jobs is not the ledger page"
page /admin/static/ledger.js
[[ "$PAGE_STATUS" == 200 ]] || fail "GET /admin/static/ledger.js answered $PAGE_STATUS"
http GET "/jobs?state=failed"
[[ "$STATUS" == 200 ]] || fail "GET /jobs?state=failed answered $STATUS: $BODY"
[[ "$(json "any(i['id'] == '$bad_job' and i['last_error'] for i in j['items'])")" == True ]] ||
    fail "the ledger page's list (GET /jobs?state=failed) lacks job $bad_job with its error: $BODY"
echo "GET /admin/jobs -> 200; GET /jobs?state=failed lists job $bad_job with its error"
SUMMARY+=("ledger page: served; the failed jobs it lists include $bad_job")

say "Oversized bodies: 20 of 20 POSTs of 2 MB get their 413 (no connection reset)"
python3 - "$BASE/users" <<'PY' || fail "not every oversized body got its 413"
import json, sys, urllib.error, urllib.request
body = json.dumps({"email": "big@example.com", "full_name": "x" * 2_000_000}).encode()
outcomes = []
for _ in range(20):
    request = urllib.request.Request(
        sys.argv[1], data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            outcomes.append(str(response.status))
    except urllib.error.HTTPError as answer:
        outcomes.append(str(answer.code))
    except OSError as error:  # URLError: a reset connection
        outcomes.append(type(error).__name__)
print("answers:", ", ".join(outcomes))
sys.exit(None if outcomes == ["413"] * 20 else "expected 413 twenty times")
PY
SUMMARY+=("oversized bodies: 20 of 20 got 413")

say "Scaling: docker compose up -d --scale worker=3 --wait (the mail server works again)"
set_env EMAIL_SIMULATED_FAILURES 0
t0="$(now)"
compose up -d --scale worker=3 --wait || fail "scaling to 3 workers failed"
scale_seconds="$(elapsed "$t0" "$(now)")"
compose ps worker
deadline=$((SECONDS + TIMEOUT))
while :; do
    http GET /health/workers
    if [[ "$STATUS" == 200 ]] && (($(json 'sum(w["state"] == "ok" for w in j["workers"])') == 3)); then
        break
    fi
    ((SECONDS < deadline)) || fail "GET /health/workers does not list 3 workers: $STATUS $BODY"
    sleep 1
done
echo "workers: $(json '", ".join(w["name"] + " (concurrency " + str(w["concurrency"]) + ")" for w in j["workers"])')"
create_user scaled
wait_for_log "Job $JOB_ID ($TASK) succeeded on attempt 1" >/dev/null
echo "job $JOB_ID succeeded with 3 workers"
SUMMARY+=("scale to 3 workers until healthy: ${scale_seconds}s; /health/workers lists 3")

say "Logs: every line of every app container is JSON"
for service in migrate api worker relay flower; do
    service_logs --no-log-prefix "$service" >"$TMP/$service.log"
done
python3 - "$TMP" <<'PY' || fail "a container logged a line that is not JSON"
import json, pathlib, sys
problems, counts = [], []
for service in ("migrate", "api", "worker", "relay", "flower"):
    text = pathlib.Path(sys.argv[1], f"{service}.log").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            problems.append(f"{service}: {line[:200]}")
    counts.append(f"{service} {len(lines)}")
    if not lines:
        problems.append(f"{service}: logged nothing")
print("JSON lines:", ", ".join(counts))
for problem in problems[:20]:
    print("  not JSON:", problem)
sys.exit(1 if problems else None)
PY
grep -q '"logger": "uvicorn.access"' "$TMP/api.log" || fail "no uvicorn access line in the API's logs"
SUMMARY+=("logs: every line of migrate, api, worker, relay and flower is JSON, access lines too")

say "Smoke test passed"
for line in "${SUMMARY[@]}"; do
    echo "  - $line"
done
