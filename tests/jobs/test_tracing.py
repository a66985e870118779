"""One trace from the HTTP request to the task's run, across real processes: the API in
this process (spans in memory), a real worker (spans in a file), the relay in between."""

import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from durable_jobs import JobState, relay_pending_jobs, wait_for_publishing
from tests.support.launchers import start_api, start_worker
from tests.support.ledger import job_row, new_user_payload, wait_for_job_state
from tests.support.runner import child_env, wait_until
from tests.support.tracing import SpanRecord, in_memory_spans, read_spans

pytestmark = pytest.mark.slow

AppClientFactory = Callable[..., TestClient]
# Nothing listens there: a publish fails at once and the job waits for the relay.
DEAD_BROKER_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def local_spans() -> Iterator[Callable[[], list[SpanRecord]]]:
    """The spans this process has ended since the test began."""
    exporter = in_memory_spans()
    exporter.clear()
    yield lambda: [SpanRecord.of(span) for span in exporter.get_finished_spans()]
    exporter.clear()


@pytest.fixture
def worker_spans(tmp_path: Path) -> Iterator[Path]:
    """A real worker with TRACING on; its spans go to the returned file."""
    spans_file = tmp_path / "worker-spans.jsonl"
    env = child_env({"TRACING": "true", "TEST_SPANS_FILE": str(spans_file)})
    worker = start_worker(
        f"traced-{uuid.uuid4().hex[:8]}", env, 1, celery_app="tests.support.trace_worker"
    )
    yield spans_file
    worker.stop()


def run_span(spans_file: Path, job_id: str) -> SpanRecord:
    def runs() -> list[SpanRecord]:
        return [
            s
            for s in read_spans(spans_file)
            if s.name.startswith("run ") and s.attributes.get("job.id") == job_id
        ]

    wait_until(runs, 20, what="the worker's span of the job's run")
    [span] = runs()
    return span


def one(spans: list[SpanRecord], prefix: str, job_id: str | None = None) -> SpanRecord:
    found = [
        s
        for s in spans
        if s.name.startswith(prefix) and (job_id is None or s.attributes.get("job.id") == job_id)
    ]
    assert len(found) == 1, (prefix, spans)
    return found[0]


def ancestors(span: SpanRecord, spans: list[SpanRecord]) -> list[str]:
    """The span ids above `span`, nearest first (FastAPI's operation spans sit between
    the request's span and the enqueue)."""
    by_id = {s.span_id: s for s in spans}
    found = []
    parent = span.parent_id
    while parent is not None:
        found.append(parent)
        parent = by_id[parent].parent_id if parent in by_id else None
    return found


def test_one_trace_from_the_request_to_the_run(
    app_client: AppClientFactory,
    local_spans: Callable[[], list[SpanRecord]],
    worker_spans: Path,
) -> None:
    client = app_client(tracing=True)

    response = client.post("/api/v1/users", json=new_user_payload())
    job_id = response.json()["welcome_email_job_id"]
    wait_for_job_state(job_id, JobState.SUCCEEDED)
    run = run_span(worker_spans, job_id)

    spans = local_spans()
    request = one(spans, "POST /api/v1/users")  # FastAPI's span of the request
    enqueue = one(spans, "enqueue ", job_id)
    publish = one(spans, "publish ", job_id)
    assert request.kind == "SERVER" and request.parent_id is None
    assert request.span_id in ancestors(enqueue, spans)
    assert publish.parent_id == enqueue.span_id
    assert run.parent_id == enqueue.span_id
    assert run.kind == "CONSUMER" and run.status == "UNSET"
    assert {request.trace_id, enqueue.trace_id, publish.trace_id, run.trace_id} == {
        request.trace_id
    }
    row = job_row(job_id)
    assert row is not None and row.traceparent is not None
    assert row.traceparent.startswith(f"00-{enqueue.trace_id}-{enqueue.span_id}-")


def test_a_job_the_relay_publishes_keeps_its_trace(
    app_client: AppClientFactory,
    local_spans: Callable[[], list[SpanRecord]],
    worker_spans: Path,
) -> None:
    cut_off = app_client(tracing=True, broker_url=DEAD_BROKER_URL)
    response = cut_off.post("/api/v1/users", json=new_user_payload())
    job_id = response.json()["welcome_email_job_id"]
    assert wait_for_publishing(timeout=10)
    row = job_row(job_id)
    assert row is not None and row.published_at is None and row.traceparent is not None

    app_client(tracing=True)  # the relay's engine: the live broker, tracing on
    assert relay_pending_jobs(min_age_seconds=0) == 1
    wait_for_job_state(job_id, JobState.SUCCEEDED)
    run = run_span(worker_spans, job_id)

    spans = local_spans()
    request = one(spans, "POST /api/v1/users")  # FastAPI's span of the request
    enqueue = one(spans, "enqueue ", job_id)
    failed, relayed = (s for s in spans if s.name.startswith("publish "))
    assert failed.status == "ERROR" and relayed.status == "UNSET"
    assert request.span_id in ancestors(enqueue, spans)
    assert failed.parent_id == relayed.parent_id == run.parent_id == enqueue.span_id
    assert {request.trace_id, relayed.trace_id, run.trace_id} == {request.trace_id}


class OtlpCollector(BaseHTTPRequestHandler):
    """Takes OTLP/HTTP trace exports as a collector would, keeping each span's name."""

    span_names: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (the handler's name is http.server's)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.span_names.extend(span.name for span in scope_spans.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_an_api_process_exports_its_spans_over_otlp() -> None:
    OtlpCollector.span_names = []
    collector = HTTPServer(("127.0.0.1", 0), OtlpCollector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    env = child_env(
        {
            "TRACING": "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
            # The SDK's batch delay, shortened from 5 s for the test.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
    )
    api, base_url = start_api(env)
    try:
        created = httpx.post(f"{base_url}/api/v1/users", json=new_user_payload(), timeout=10)
        assert created.status_code == 201
        wait_until(
            lambda: (
                {"POST /api/v1/users", "enqueue users.send_welcome_email"}
                <= set(OtlpCollector.span_names)
            ),
            20,
            what="the API's spans at the collector",
        )
    finally:
        api.stop()
        collector.shutdown()
        collector.server_close()
