"""Spans the tracing tests read: the test process's own, in memory, and a worker's,
written as JSON lines to a file (a real worker is another process)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass(frozen=True)
class SpanRecord:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str | None
    status: str
    attributes: dict[str, Any]

    @classmethod
    def of(cls, span: ReadableSpan) -> "SpanRecord":
        context = span.get_span_context()
        assert context is not None
        return cls(
            name=span.name,
            kind=span.kind.name,
            trace_id=f"{context.trace_id:032x}",
            span_id=f"{context.span_id:016x}",
            parent_id=None if span.parent is None else f"{span.parent.span_id:016x}",
            status=span.status.status_code.name,
            attributes=dict(span.attributes or {}),
        )


class JsonLinesExporter(SpanExporter):
    """Appends one JSON object per span; each pool process of a worker appends its own."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(SpanRecord.of(span).__dict__) + "\n" for span in spans)
        with self.path.open("a") as file:
            file.write(lines)
        return SpanExportResult.SUCCESS


def read_spans(path: Path) -> list[SpanRecord]:
    if not path.exists():
        return []
    return [SpanRecord(**json.loads(line)) for line in path.read_text().splitlines()]


def export_spans_to(exporter: SpanExporter) -> None:
    """Make this process's tracer provider the SDK's, exporting each span as it ends."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


_in_memory: list[InMemorySpanExporter] = []


def in_memory_spans() -> InMemorySpanExporter:
    """The test process's spans; its tracer provider can be set only once per process."""
    if not _in_memory:
        _in_memory.append(InMemorySpanExporter())
        export_spans_to(_in_memory[0])
    return _in_memory[0]
