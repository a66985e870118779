"""Schemathesis against the live OpenAPI schema: no 5xx, no answer the schema does not allow.

A real API server (uvicorn, as in production) and a real worker are fuzzed by the
`schemathesis run` CLI, as CI would run it: every phase (the schema's examples, the
coverage of its edge cases and invalid inputs, random fuzzing, stateful sequences along
the inferred links) and every check (no server error; documented status code, content
type, headers and body; invalid data refused with a 4xx, valid data not refused; auth not
ignored). The admin token is sent, so the jobs API is fuzzed too. Each operation gets a
bounded number of examples (FUZZ_MAX_EXAMPLES); FUZZ_SEED replays a reported run.
"""

import os
import subprocess
from pathlib import Path

from tests.support.launchers import start_api
from tests.support.runner import VENV_BIN, Process, child_env

ADMIN_TOKEN = "test-admin-token"
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "25")
RUN_TIMEOUT_SECONDS = 300

# Answers that are right although Schemathesis would flag them, each documented in the schema.
CONFIG = """
# Readiness and the workers report answer 503 when a dependency or every worker fails
# them (a worker busy under the fuzzing may miss the 1.5 s inspection deadline).
[[operations]]
include-path-regex = "^/api/v1/health/(ready|workers)$"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

# `cursor` is opaque: any string fits its schema, but only a `next_cursor` decodes (else 400).
[[operations]]
include-path = "/api/v1/jobs"
include-method = "GET"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx",
]

# A body can fit the schema and still be refused with the documented 422: `format: email`
# cannot say that special-use domains (name@x.test) are refused, `minLength` cannot say that
# a name is trimmed first (" "), and generated Idempotency-Keys repeat ("0") with another body.
[[operations]]
include-path = "/api/v1/users"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]
"""


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    tmp_path: Path, worker: Process
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    api, base_url = start_api(child_env())
    try:
        argv = [
            str(VENV_BIN / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{base_url}/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--mode",
            "all",
            "--max-examples",
            MAX_EXAMPLES,
            "--header",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "--request-timeout",
            "10",
            # What Hypothesis finds stays out of the work tree.
            "--generation-database",
            "none",
            "--no-color",
        ]
        if seed := os.environ.get("FUZZ_SEED"):
            argv += ["--seed", seed]
        run = subprocess.run(
            argv,
            cwd=tmp_path,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
        )
    finally:
        api.stop()
    assert run.returncode == 0, f"{run.stdout}{run.stderr}\n--- API log ---\n{api.log()[-5000:]}"
