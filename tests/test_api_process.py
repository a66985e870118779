"""The API process loads no worker-only code: no bootstep, no signal handler, no patch.

Checked in a fresh interpreter, as the test process itself imports the worker.
"""

import json
import subprocess
import sys

PROGRAM = """
import json, sys
from celery import signals
from app.core.config import Settings
from app.main import create_app

create_app(Settings())
receivers = {
    name: len(getattr(signals, name).receivers)
    for name in ("setup_logging", "worker_process_init", "beat_init", "task_unknown",
                 "worker_init", "celeryd_init")
}
loaded = sorted(
    m for m in sys.modules
    if m == "app.worker" or m.startswith(("durable_jobs._worker", "app.worker."))
)
print(json.dumps({"receivers": receivers, "loaded": loaded}))
"""


def test_create_app_loads_no_worker_code() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["loaded"] == []
    assert set(report["receivers"].values()) == {0}
