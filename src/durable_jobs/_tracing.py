"""OpenTelemetry traces of a job: its enqueue, each publish and each run join the trace
of the HTTP request that enqueued it.

The enqueue's trace context (a W3C traceparent) is kept in the job's ledger row, so a
publish by the relay and every attempt, however long after and in whatever process,
are children of the enqueue. With TRACING off no tracer exists, nothing is set up, and
a job costs one None check per step.
"""

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from durable_jobs._settings import JobsSettings

# The ledger keeps W3C trace context whatever propagator the host configured.
_W3C = TraceContextTextMapPropagator()
FLUSH_TIMEOUT_MILLIS = 5000


def build_tracer(settings: "JobsSettings") -> Tracer | None:
    """The engine's tracer when TRACING is on; the SDK with an OTLP exporter is set up
    unless the host has set a tracer provider of its own."""
    if not settings.tracing:
        return None
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        _export_over_otlp(settings)
    return trace.get_tracer("durable_jobs")


def _export_over_otlp(settings: "JobsSettings") -> None:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise RuntimeError(
            "TRACING=true needs the OpenTelemetry SDK: install durable-jobs[otlp], "
            "or set a tracer provider before create_celery"
        ) from exc
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name})
    )
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to keep in a job's row."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str) -> Context:
    return _W3C.extract({"traceparent": traceparent})


def job_step_span(
    tracer: Tracer, name: str, kind: SpanKind, traceparent: str, attributes: dict[str, Any]
) -> AbstractContextManager[Span]:
    """The span of a later step of a job (a publish, a run), a child of its enqueue; an
    exception raised within is recorded on it and marks it failed."""
    return tracer.start_as_current_span(
        name, context=context_of(traceparent), kind=kind, attributes=attributes
    )


def flush() -> None:
    """Export what is buffered: a pool process may exit without running atexit."""
    force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if callable(force_flush):
        force_flush(FLUSH_TIMEOUT_MILLIS)
