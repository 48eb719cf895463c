"""Telemetry without confidential values: the JSON log formatter, the metrics hooks and labels,
the review-queue sampler, and the `sharinghub trace` span tree."""

from __future__ import annotations

import argparse
import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from sharinghub.contracts import Outcome, Stage, topics
from sharinghub.runtime import record_spans
from sharinghub.runtime.metrics import HubMetrics, review_queue_sampler
from sharinghub.runtime.stage import Item, Output
from sharinghub.runtime.telemetry import EXCEPTION_TEXT_WITHHELD, JsonLogFormatter
from sharinghub.tools import trace_view

CANARY = "Dolores Quintero 07700 900147"


# --- the log formatter ---------------------------------------------------------------------


def fmt(record: logging.LogRecord) -> dict[str, Any]:
    line = JsonLogFormatter().format(record)
    assert "\n" not in line, "one JSON object per line"
    out: dict[str, Any] = json.loads(line)
    return out


def record(msg: str, *, exc: BaseException | None = None, **extra: Any) -> logging.LogRecord:
    return logging.getLogger("sharinghub.test").makeRecord(
        "sharinghub.test",
        logging.ERROR,
        __file__,
        1,
        msg,
        (),
        (type(exc), exc, exc.__traceback__) if exc else None,
        extra=extra,
    )


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_log_line_is_json_with_level_logger_message_and_extras() -> None:
    out = fmt(record("message rejected", stage="consent", offset=7))
    assert out["level"] == "ERROR" and out["logger"] == "sharinghub.test"
    assert out["msg"] == "message rejected"
    assert out["stage"] == "consent" and out["offset"] == 7
    assert "trace_id" not in out  # no span active


def test_exception_logs_only_its_type_never_its_text_or_traceback() -> None:
    exc = raised(ValueError(f"bad value {CANARY}"))
    out = fmt(record("batch failed; it will be redelivered", exc=exc))
    assert out["exc_type"] == "ValueError"
    line = json.dumps(out)
    assert "Dolores" not in line and "Traceback" not in line and "900147" not in line


def test_exception_text_interpolated_by_a_library_is_withheld() -> None:
    # FastStream logs a failed batch as f"{type}: {exc}" (and sometimes repr(exc)) through
    # our logger; a database error's text echoes its SQL parameters.
    exc = raised(RuntimeError(f"INSERT failed, parameters: ('{CANARY}',)"))
    for msg in (f"RuntimeError: {exc}", repr(exc)):
        out = fmt(record(msg, exc=exc))
        assert CANARY not in json.dumps(out)
        assert EXCEPTION_TEXT_WITHHELD in out["msg"]
        assert out["exc_type"] == "RuntimeError"


def test_chained_exception_text_is_withheld_too() -> None:
    try:
        try:
            raise KeyError(CANARY)
        except KeyError as inner:
            raise LookupError("lookup failed") from inner
    except LookupError as outer:
        exc: BaseException = outer
    out = fmt(record(f"LookupError: {exc} (cause: {exc.__cause__})", exc=exc))
    assert "Dolores" not in json.dumps(out)


def test_message_without_exception_is_kept_verbatim() -> None:
    out = fmt(record("envelope refused: stamp verification failed", problem="policy stamp"))
    assert out["msg"] == "envelope refused: stamp verification failed"


def test_log_line_inside_a_span_carries_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("consent process") as span:
        out = fmt(record("service started"))
        ctx = span.get_span_context()
    assert out["trace_id"] == format(ctx.trace_id, "032x")
    assert out["span_id"] == format(ctx.span_id, "016x")


# --- metrics -------------------------------------------------------------------------------


@pytest.fixture
def meter() -> tuple[HubMetrics, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    return HubMetrics(provider.get_meter("test")), reader


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = list(m.data.data_points)
    return out


def item(topic: str, value: bytes = b"{}", ts_ms: int | None = None) -> Item:
    rec = ConsumerRecord(
        topic=topic,
        partition=0,
        offset=1,
        timestamp=ts_ms if ts_ms is not None else -1,
        timestamp_type=0,
        key=b"subj-em-2231",
        value=value,
        checksum=None,
        serialized_key_size=12,
        serialized_value_size=len(value),
        headers=[],
    )
    return Item(record=rec, span=record_spans.start("policy process", rec.headers, {}))


def outcome_json(outcome: str, purpose: str | None, stage: str = "policy") -> bytes:
    return json.dumps(
        {"request_id": "req-1", "outcome": outcome, "purpose": purpose, "stage": stage}
    ).encode()


def test_batch_counts_outcomes_dlq_and_times_without_any_value_in_labels(meter) -> None:  # type: ignore[no-untyped-def]
    metrics, reader = meter
    now = datetime.now(UTC).timestamp()
    a, b, c = item(topics.CONSENT_CHECKED), item(topics.CONSENT_CHECKED), item(topics.REQUESTS)
    a.received_at = datetime.fromtimestamp(now - 2.0, UTC)
    outputs = [
        a.output(topics.OUTCOMES, outcome_json("denied", "consent_based_sharing"), "req-1"),
        b.output(topics.OUTCOMES, outcome_json("denied", CANARY), "req-2"),  # not a purpose
        c.output(topics.DLQ, json.dumps({"reason_code": "schema_violation"}).encode(), "x"),
        c.output(topics.DLQ, json.dumps({"reason_code": CANARY}).encode(), "y"),
        a.output(topics.inbox_topic("ag-eastmere-homes-association"), b"{}", "z"),
    ]
    metrics.batch_done(Stage.POLICY, [a, b, c], outputs, started_at=now, duration_s=0.25)
    got = points(reader)

    requests = {tuple(sorted(p.attributes.items())): p.value for p in got["sharinghub.requests"]}
    assert requests == {
        (("outcome", "denied"), ("purpose", "consent_based_sharing"), ("stage", "policy")): 1,
        (("outcome", "denied"), ("purpose", "unknown"), ("stage", "policy")): 1,
    }
    dlq = {p.attributes["reason_code"]: p.value for p in got["sharinghub.dlq.messages"]}
    assert dlq == {"schema_violation": 1, "other": 1}
    [e2e] = got["sharinghub.request.e2e.duration"]
    assert e2e.count == 1 and 2.2 <= e2e.sum <= 2.3  # received 2 s before + 0.25 s batch
    [batch] = got["sharinghub.stage.batch.duration"]
    assert batch.count == 1 and batch.sum == pytest.approx(0.25)
    [per_msg] = got["sharinghub.stage.message.duration"]
    assert per_msg.count == 1 and per_msg.sum == pytest.approx(0.25 / 3)
    processed = {p.attributes["topic"]: p.value for p in got["sharinghub.stage.messages"]}
    assert processed == {topics.CONSENT_CHECKED: 2, topics.REQUESTS: 1}
    every_label = json.dumps([dict(p.attributes) for pts in got.values() for p in pts])
    assert "Dolores" not in every_label and "req-" not in every_label
    assert "subj-" not in every_label


def test_rejected_request_e2e_starts_at_the_request_records_broker_timestamp(meter) -> None:  # type: ignore[no-untyped-def]
    metrics, reader = meter
    now = datetime.now(UTC).timestamp()
    it = item(topics.REQUESTS, ts_ms=int((now - 1.5) * 1000))
    out = it.output(topics.OUTCOMES, outcome_json("rejected_invalid", None, "consent"), "r")
    metrics.batch_done(Stage.CONSENT, [it], [out], started_at=now, duration_s=0.0)
    got = points(reader)
    [e2e] = got["sharinghub.request.e2e.duration"]
    assert 1.4 <= e2e.sum <= 1.6
    [queued] = got["sharinghub.stage.batch.queued"]
    assert 1.4 <= queued.sum <= 1.6
    [req] = got["sharinghub.requests"]
    assert dict(req.attributes) == {
        "outcome": "rejected_invalid",
        "purpose": "unknown",
        "stage": "consent",
    }


def test_failed_batch_is_counted_by_exception_type_only(meter) -> None:  # type: ignore[no-untyped-def]
    metrics, reader = meter
    metrics.batch_failed(Stage.DELIVERY, TimeoutError(CANARY))
    [p] = points(reader)["sharinghub.stage.batch.failures"]
    assert dict(p.attributes) == {"stage": "delivery", "error_type": "TimeoutError"}


def test_lag_gauge_reports_the_latest_sample_per_stage_and_topic(meter) -> None:  # type: ignore[no-untyped-def]
    metrics, reader = meter
    metrics.set_lag(Stage.POLICY, {topics.CONSENT_CHECKED: 5, topics.REVIEW_DECISIONS: 0})
    metrics.set_lag(Stage.POLICY, {topics.CONSENT_CHECKED: 2})
    lag = {p.attributes["topic"]: p.value for p in points(reader)["sharinghub.consumer.lag"]}
    assert lag == {topics.CONSENT_CHECKED: 2}


async def test_review_queue_sampler_reports_depth_and_oldest_age(meter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sharinghub.runtime.metrics as metrics_module
    from sharinghub.policy.reviews import ReviewCaseRow
    from sharinghub.runtime.db import create_engine_for, session_factory
    from sharinghub.runtime.schema import upgrade

    metrics, reader = meter
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    now = datetime.now(UTC)
    rows = [
        ("rc-1", "pending_review", "open", now - timedelta(hours=3)),
        ("rc-2", "pending_review", "open", now - timedelta(minutes=5)),
        ("rc-3", "pending_review", "decided", now - timedelta(days=9)),
        ("rc-4", "retrospective_review", "open", now - timedelta(hours=1)),
    ]
    with session_factory(engine)() as session, session.begin():
        for case_id, kind, status, opened in rows:
            session.add(
                ReviewCaseRow(
                    case_id=case_id,
                    request_id=f"req-{case_id}",
                    kind=kind,
                    status=status,
                    case_json="{}",
                    envelope_json="{}",
                    trace_headers="{}",
                    opened_at=opened,
                    due_at=opened + timedelta(hours=72),
                )
            )
    original = metrics_module._metrics
    metrics_module._metrics = metrics  # the sampler writes to the process-wide instruments
    try:
        await review_queue_sampler(engine)()
    finally:
        metrics_module._metrics = original
        engine.dispose()
    got = points(reader)
    depth = {p.attributes["kind"]: p.value for p in got["sharinghub.review.queue.depth"]}
    assert depth == {"pending_review": 2, "retrospective_review": 1}  # decided ones left out
    age = {p.attributes["kind"]: p.value for p in got["sharinghub.review.oldest.age"]}
    assert 3 * 3600 - 5 <= age["pending_review"] <= 3 * 3600 + 60
    assert 3600 - 5 <= age["retrospective_review"] <= 3600 + 60


def test_outputs_keep_no_reference_in_their_equality_or_repr() -> None:
    it = item(topics.REQUESTS, value=CANARY.encode())
    out = it.output(topics.OUTCOMES, b"{}", "k")
    assert out.item is it
    assert CANARY not in repr(out)
    assert out == Output(topics.OUTCOMES, b"{}", b"k", out.headers)


# --- sharinghub trace ----------------------------------------------------------------------


def span(
    sid: str,
    parent: str | None,
    service: str,
    start_ms: float,
    end_ms: float,
    trace: str = "t1",
    **attrs: Any,
) -> dict[str, Any]:
    return {
        "trace_id": trace,
        "span_id": sid,
        "parent_id": parent,
        "name": f"{service.split('-')[-1]} process",
        "service": service,
        "start_ns": int(start_ms * 1e6),
        "end_ns": int(end_ms * 1e6),
        "status": "UNSET",
        "attributes": attrs,
    }


SPANS = [
    span("a", None, "sharinghub-consent", 0, 4, **{"sharinghub.request_id": "req-1"}),
    span("b", "a", "sharinghub-policy", 10, 16, **{"sharinghub.outcome": "delivered"}),
    span("c", "b", "sharinghub-redaction", 20, 23),
    span("d", "c", "sharinghub-delivery", 22.5, 30, **{"sharinghub.outcome": "delivered"}),
    span("x", None, "sharinghub-consent", 0, 1, trace="t2", **{"sharinghub.request_id": "other"}),
]


def test_trace_tree_shows_services_durations_and_queueing_gaps() -> None:
    mine = trace_view.spans_of_request(SPANS, "req-1")
    assert {s["span_id"] for s in mine} == {"a", "b", "c", "d"}
    lines = trace_view.render(trace_view.build_forest(mine))
    assert len(lines) == 4
    assert "sharinghub-consent" in lines[0] and "4.0 ms" in lines[0]
    assert lines[1].index("sharinghub-policy") > lines[0].index("sharinghub-consent")
    assert "(queued 6.0 ms)" in lines[1]  # consent ended at 4, policy started at 10
    assert "(queued 4.0 ms)" in lines[2]
    assert "overlapped" in lines[3]  # delivery started before redaction's span ended
    assert "outcome=delivered" in lines[3]
    assert trace_view.summary(mine).startswith(
        "total 30.0 ms · in stages 20.0 ms · between stages 10.0 ms"
    )


def test_trace_command_prints_the_request_and_exits_1_for_an_unknown_one(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in SPANS) + '\n{"torn": ')
    out = io.StringIO()
    args = argparse.Namespace(request_id="req-1", file=str(path), json=False)
    assert trace_view.cmd_trace(args, out) == 0
    text = out.getvalue()
    assert text.startswith("request req-1  trace t1")
    assert "sharinghub-delivery" in text and "other" not in text
    args = argparse.Namespace(request_id="nope", file=str(path), json=False)
    assert trace_view.cmd_trace(args, io.StringIO()) == 1


def test_trace_command_registers_on_a_cli() -> None:
    parser = argparse.ArgumentParser()
    trace_view.register(parser.add_subparsers())
    args = parser.parse_args(["trace", "req-1", "--json"])
    assert args.func is trace_view.cmd_trace and args.request_id == "req-1" and args.json


def test_outcome_enum_values_are_codes() -> None:
    # The metrics' label guard accepts vocabulary ids; they must all look like codes.
    from sharinghub.runtime.metrics import _label

    assert all(_label(o.value) == o.value for o in Outcome)
    assert _label(CANARY) == "other" and _label("req-1") == "other"
