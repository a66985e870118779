"""Smoke test of the Docker Compose stack (`make smoke`, `make smoke BROKER=rabbitmq`):

    uv run python -m tests.smoke

Builds and starts the whole stack under its own project name and port, with an env
file of its own written as a developer's .env would be (LOG_FORMAT=text, among
others), then over HTTP: creates a user and waits for its welcome-email job to
succeed; checks that settings written to the env file reach the worker, then changes
one there (every send fails) and watches a job go through its 3 retries to `failed`;
checks that the ledger page is served and that the JSON it reads lists that failed
job (the page's script itself is tested in Chromium by tests/browser/); sends 20
oversized bodies, each of which must get its 413; scales to 3 workers and checks
that all of them answer; and finally that every line every app container logged is
JSON. The stack and its volumes are removed at the end, whatever happens
(SMOKE_KEEP=1 leaves it running).

The checks run in the order `tests/smoke/__main__.py` lists them, one call each; they
live in `tests/smoke/checks.py`, the stack they drive in `tests/smoke/compose.py`.

Needs: docker with Compose v2.
Knobs: COMPOSE_PROJECT_NAME (durable-jobs-smoke-<broker>), SMOKE_API_PORT (18000),
       SMOKE_FLOWER_PORT (15555), SMOKE_PROMETHEUS_PORT (19090),
       SMOKE_TIMEOUT (seconds to wait for a log line, 60),
       SMOKE_KEEP (0), SMOKE_BROKER (redis, or rabbitmq: the compose profile).
"""
