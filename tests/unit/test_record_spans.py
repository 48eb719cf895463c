"""Per-record spans: W3C parenting, sampling, and export through the SDK's span processor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sharinghub.runtime import record_spans
from sharinghub.runtime.record_spans import parse_traceparent
from sharinghub.runtime.telemetry import JsonLinesSpanExporter

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def header(flags: str = "01", state: str | None = None) -> list[tuple[str, bytes]]:
    out = [("traceparent", f"00-{TRACE}-{PARENT}-{flags}".encode())]
    if state:
        out.append(("tracestate", state.encode()))
    return out


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    previous = record_spans._sink
    record_spans.configure(
        SimpleSpanProcessor(exporter), Resource.create({"service.name": "sharinghub-test"})
    )
    try:
        yield exporter
    finally:
        record_spans._sink = previous


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        f"00-{TRACE}-{PARENT}",  # no flags
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four parts
        f"ff-{TRACE}-{PARENT}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"00-{TRACE.upper()}-{PARENT}-01",  # hex must be lower case
        f"00-{TRACE}-{PARENT[:-1]}x-01",
    ],
)
def test_invalid_traceparents_are_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_a_valid_traceparent_is_read_and_future_versions_may_add_parts() -> None:
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-01") == (int(TRACE, 16), int(PARENT, 16), 1)
    assert parse_traceparent(f"01-{TRACE}-{PARENT}-00-more") == (int(TRACE, 16), int(PARENT, 16), 0)


def test_a_record_span_is_the_child_of_its_headers_and_exported_as_one(
    exported: InMemorySpanExporter,
) -> None:
    span = record_spans.start("policy process", header(state="vendor=x"), {"a": 1})
    span.set_attribute("sharinghub.outcome", "delivered")
    assert span.trace_id_hex == TRACE and span.parent_id == int(PARENT, 16)
    traceparent = span.headers()["traceparent"]
    assert traceparent == f"00-{TRACE}-{span.span_id:016x}-01" and span.span_id != int(PARENT, 16)
    assert span.headers()["tracestate"] == "vendor=x"
    record_spans.finish([span])
    (done,) = exported.get_finished_spans()
    assert done.name == "policy process" and done.kind is SpanKind.CONSUMER
    assert done.context.trace_id == int(TRACE, 16) and done.context.span_id == span.span_id
    assert done.parent is not None and done.parent.span_id == int(PARENT, 16)
    assert done.attributes == {"a": 1, "sharinghub.outcome": "delivered"}
    assert done.resource.attributes["service.name"] == "sharinghub-test"
    assert done.start_time is not None and done.end_time is not None
    assert done.start_time <= done.end_time
    assert done.status.status_code is StatusCode.UNSET


def test_a_record_without_context_starts_a_trace(exported: InMemorySpanExporter) -> None:
    a, b = record_spans.start("consent process", [], {}), record_spans.start("x", None, {})
    assert a.trace_id and a.parent_id is None and a.trace_id != b.trace_id
    record_spans.finish([a])
    (done,) = exported.get_finished_spans()
    assert done.parent is None


def test_a_failed_batch_marks_its_spans_with_the_error_class(
    exported: InMemorySpanExporter,
) -> None:
    span = record_spans.start("delivery process", header(), {})
    span.set_error("OperationalError")
    record_spans.finish([span])
    (done,) = exported.get_finished_spans()
    assert done.status.status_code is StatusCode.ERROR
    assert done.status.description == "OperationalError"


def test_an_unsampled_parent_propagates_but_is_not_exported(
    exported: InMemorySpanExporter,
) -> None:
    span = record_spans.start("redaction process", header(flags="00"), {})
    assert span.headers()["traceparent"].endswith("-00")
    record_spans.finish([span])
    assert exported.get_finished_spans() == ()


def test_with_tracing_off_the_context_passes_through_unchanged() -> None:
    previous = record_spans._sink
    record_spans.configure(None)
    try:
        span = record_spans.start("consent process", header(state="k=v"), {})
        assert span.headers() == {"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "k=v"}
        assert record_spans.start("consent process", [], {}).headers() == {}
        record_spans.finish([span])  # nothing to export, no error
    finally:
        record_spans._sink = previous


def test_the_local_file_gets_the_same_lines_as_the_sdk_exporter_writes(tmp_path: Path) -> None:
    previous = record_spans._sink
    try:
        direct, via_sdk = tmp_path / "direct.jsonl", tmp_path / "sdk.jsonl"
        record_spans.configure_file(direct, "sharinghub-policy")
        span = record_spans.start("policy process", header(), {"sharinghub.outcome": "denied"})
        span.set_error("TimeoutError")
        record_spans.finish([span], end_ns=span.start_ns + 5)
        record_spans.configure(
            SimpleSpanProcessor(JsonLinesSpanExporter(via_sdk)),
            Resource.create({"service.name": "sharinghub-policy"}),
        )
        record_spans.finish([span], end_ns=span.start_ns + 5)
        (line,) = direct.read_text().splitlines()
        assert json.loads(line) == json.loads(via_sdk.read_text().splitlines()[0])
        assert json.loads(line)["parent_id"] == PARENT
    finally:
        record_spans._sink = previous
