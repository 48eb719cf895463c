"""OpenTelemetry set-up and W3C trace context in Kafka headers.

Spans carry ids, vocabulary ids and counts only — never a field value, a name, a stated reason
or a subject id (invariant 6). Exporter: OTLP/HTTP when an endpoint is configured, otherwise a
local JSON-lines file that `sharinghub trace` reads.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from sharinghub.runtime import record_spans
from sharinghub.runtime.settings import Settings

Headers = Sequence[tuple[str, bytes]]
SPAN_QUEUE_SIZE = 32_768  # ~50 MB at most while the exporter catches up


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a local file, one JSON object per line (thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for s in spans:
            ctx = s.get_span_context()
            lines.append(
                orjson.dumps(  # the exporter thread holds the GIL: keep it short
                    {
                        "trace_id": format(ctx.trace_id, "032x") if ctx else None,
                        "span_id": format(ctx.span_id, "016x") if ctx else None,
                        "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
                        "name": s.name,
                        "service": s.resource.attributes.get("service.name"),
                        "start_ns": s.start_time,
                        "end_ns": s.end_time,
                        "status": s.status.status_code.name,
                        "attributes": dict(s.attributes or {}),
                    },
                    default=str,
                )
            )
        with self._lock, self._path.open("ab") as fh:
            fh.write(b"\n".join(lines) + b"\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def setup_tracing(service_name: str, settings: Settings) -> TracerProvider | None:
    """Install a tracer provider for this process; None when tracing is switched off."""
    if not settings.tracing:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter: SpanExporter
    if settings.otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
        except ImportError as exc:
            raise RuntimeError(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed: "
                "pip install 'sharinghub[otlp]'"
            ) from exc
        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces")
    else:
        exporter = JsonLinesSpanExporter(settings.resolved_trace_file())
    # The SDK's default queue (2,048 spans) overflows in a burst and drops spans silently,
    # which leaves holes in exactly the traces an engineer looks at after a surge.
    processor = BatchSpanProcessor(
        exporter,
        schedule_delay_millis=500,
        max_queue_size=SPAN_QUEUE_SIZE,
        max_export_batch_size=4096,
    )
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    # Per-record spans of the stages (see record_spans): through the same processor to the
    # collector, or straight into the local file.
    if settings.otlp_endpoint:
        record_spans.configure(processor, provider.resource)
    else:
        record_spans.configure_file(settings.resolved_trace_file(), service_name)
    return provider


class JsonLogFormatter(logging.Formatter):
    """Structured JSON logs with trace and span ids. Callers log ids and codes, never values."""

    _skip = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": _without_exception_text(record),
        }
        if span.is_valid:
            out["trace_id"] = format(span.trace_id, "032x")
            out["span_id"] = format(span.span_id, "016x")
        out.update({k: v for k, v in record.__dict__.items() if k not in self._skip})
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)


EXCEPTION_TEXT_WITHHELD = "<exception text withheld>"


def _without_exception_text(record: logging.LogRecord) -> str:
    """The message with the text of the logged exception (and its causes) cut out.

    An exception's text can carry data (a database error echoes its SQL parameters, a
    validation error its input), and FastStream logs batch failures as `f"{type}: {exc}"`
    through our logger — so the text is removed wherever it appears; `exc_type` stays.
    """
    msg = record.getMessage()
    exc = record.exc_info[1] if record.exc_info else None
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for text in (repr(exc), str(exc)):
            if text and text != type(exc).__name__:
                msg = msg.replace(text, EXCEPTION_TEXT_WITHHELD)
        exc = exc.__cause__ or exc.__context__
    return msg


def setup_logging(level: str) -> None:
    """JSON logs on stderr; third-party chatter (per-batch 'Received') kept at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faststream", "kafka", "presidio-analyzer", "presidio-anonymizer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
