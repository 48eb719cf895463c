"""Per-record spans, built cheaply and exported through the OpenTelemetry SDK.

Every consumed record gets a CONSUMER span, the child of the W3C trace context in its
headers, so one request is one trace across processes (invariant 7). A stage opens hundreds
of these at once; the SDK's `Tracer.start_span` … `Span.end` path (a lock, attribute checks
and context objects per span) cost ~45 µs per span on this machine, more than the stage's
own work on a consent check. A span is only ids, two timestamps and a few attributes, so a
`RecordSpan` keeps exactly that, and when its batch ends it is handed to the provider's span
processor as an SDK `ReadableSpan`: the same export path (batching thread, JSON-lines file or
OTLP) and the same data as a span made by the SDK, for ~15 µs. Without an OTLP endpoint the
spans go straight to the local JSON-lines file, for ~5 µs.

Sampling follows the SDK default (parent-based, always on for roots): a record whose parent
is not sampled gets a span id to propagate but is not exported. With tracing off, the
incoming context is passed on unchanged and nothing is recorded.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

AttributeValue = str | bool | int | float
_SAMPLED = 0x01
# version-trace id-parent id-flags; a later version may append fields after a dash
_TRACEPARENT = re.compile(r"\s*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\s*")
_OK = Status(StatusCode.UNSET)


@dataclass(slots=True)
class RecordSpan:
    """The span of one consumed record: ids, start time, attributes (ids and codes only)."""

    name: str
    trace_id: int
    span_id: int
    parent_id: int | None
    flags: int
    tracestate: str | None
    start_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    error: str | None = None
    recording: bool = True

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set one attribute (never a field value or a name: invariant 6)."""
        self.attributes[key] = value

    def set_error(self, description: str) -> None:
        """Mark the span failed; `description` is an exception class name, never its text."""
        self.error = description

    @property
    def trace_id_hex(self) -> str:
        return format(self.trace_id, "032x")

    def headers(self) -> dict[str, str]:
        """W3C trace context that makes a published message this span's child."""
        if not self.trace_id:
            return {}
        out = {"traceparent": f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"}
        if self.tracestate:
            out["tracestate"] = self.tracestate
        return out


class _Sink(Protocol):
    def export(self, spans: Sequence[RecordSpan], end_ns: int) -> None: ...


@dataclass
class _SdkSink:
    """Spans handed to an SDK span processor (batching thread, then OTLP or another exporter)."""

    processor: SpanProcessor
    resource: Resource
    scope: InstrumentationScope

    def export(self, spans: Sequence[RecordSpan], end_ns: int) -> None:
        for span in spans:
            flags = TraceFlags(span.flags)
            state = TraceState.from_header([span.tracestate]) if span.tracestate else None
            context = SpanContext(span.trace_id, span.span_id, False, flags, state)
            parent = (
                SpanContext(span.trace_id, span.parent_id, True, flags, state)
                if span.parent_id
                else None
            )
            self.processor.on_end(
                ReadableSpan(
                    name=span.name,
                    context=context,
                    parent=parent,
                    resource=self.resource,
                    attributes=span.attributes,
                    kind=SpanKind.CONSUMER,
                    status=Status(StatusCode.ERROR, span.error) if span.error else _OK,
                    start_time=span.start_ns,
                    end_time=end_ns,
                    instrumentation_scope=self.scope,
                )
            )


@dataclass
class _JsonLinesSink:
    """Spans appended to the local trace file straight away, one line each, in the format of
    `telemetry.JsonLinesSpanExporter` (one write per batch; O_APPEND keeps lines whole)."""

    path: Path
    service: str

    def export(self, spans: Sequence[RecordSpan], end_ns: int) -> None:
        lines = [
            orjson.dumps(
                {
                    "trace_id": f"{span.trace_id:032x}",
                    "span_id": f"{span.span_id:016x}",
                    "parent_id": f"{span.parent_id:016x}" if span.parent_id else None,
                    "name": span.name,
                    "service": self.service,
                    "start_ns": span.start_ns,
                    "end_ns": end_ns,
                    "status": "ERROR" if span.error else "UNSET",
                    "attributes": span.attributes,
                }
            )
            for span in spans
        ]
        if lines:
            with self.path.open("ab") as fh:
                fh.write(b"\n".join(lines) + b"\n")


_sink: _Sink | None = None


def configure(processor: SpanProcessor | None, resource: Resource | None = None) -> None:
    """Export record spans through `processor` (None: tracing off, spans are not recorded)."""
    global _sink
    _sink = (
        None
        if processor is None
        else _SdkSink(processor, resource or Resource.create({}), InstrumentationScope(__name__))
    )


def configure_file(path: Path, service: str) -> None:
    """Write record spans to the local trace file directly: the SDK's span objects and its
    batching thread cost ~3× the span itself when all that happens next is a JSON line."""
    global _sink
    path.parent.mkdir(parents=True, exist_ok=True)
    _sink = _JsonLinesSink(path, service)


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) of a valid W3C ``traceparent``, else None."""
    found = _TRACEPARENT.fullmatch(value) if value else None
    if found is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = found.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(flags_hex, 16)


def _new_id(bits: int) -> int:
    value = 0
    while not value:
        value = random.getrandbits(bits)
    return value


def start(
    name: str,
    headers: Iterable[tuple[str, bytes | None]] | None,
    attributes: dict[str, AttributeValue],
) -> RecordSpan:
    """A span for one record, child of the context in its Kafka headers (or a new trace)."""
    traceparent = tracestate = None
    for key, value in headers or ():
        if not value:  # Kafka headers may have no value
            continue
        if key == "traceparent":
            traceparent = value.decode("latin-1")
        elif key == "tracestate":
            tracestate = value.decode("latin-1")
    parent = parse_traceparent(traceparent)
    if _sink is None:  # tracing off: pass the incoming context on as it came
        trace_id, span_id, flags = parent or (0, 0, 0)
        return RecordSpan(
            name, trace_id, span_id, None, flags, tracestate, 0, attributes, recording=False
        )
    if parent is None:
        return RecordSpan(
            name, _new_id(128), _new_id(64), None, _SAMPLED, None, time.time_ns(), attributes
        )
    trace_id, parent_id, flags = parent
    return RecordSpan(
        name,
        trace_id,
        _new_id(64),
        parent_id,
        flags,
        tracestate,
        time.time_ns(),
        attributes,
        recording=bool(flags & _SAMPLED),
    )


def finish(spans: Sequence[RecordSpan], end_ns: int | None = None) -> None:
    """End these spans now (or at `end_ns`) and hand the sampled ones to the exporter."""
    sink = _sink
    if sink is None:
        return
    recorded = [span for span in spans if span.recording]
    if recorded:
        sink.export(recorded, end_ns or time.time_ns())
