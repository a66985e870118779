"""The test worker with tracing: `celery -A tests.support.trace_worker`, writing its
spans to the file TEST_SPANS_FILE names (set TRACING=true too)."""

import os
from pathlib import Path

from tests.support.tracing import JsonLinesExporter, export_spans_to

# Before the app is built: the engine then uses this provider rather than set up OTLP.
export_spans_to(JsonLinesExporter(Path(os.environ["TEST_SPANS_FILE"])))

from tests.support.fault_worker import celery_app  # noqa: E402

__all__ = ["celery_app"]
