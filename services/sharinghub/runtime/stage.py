"""The batch harness every stage runs in: consume a batch, process, publish, then commit.

At-least-once: the offsets of a batch are committed only after every message it produced has
been acknowledged by the broker (FastStream `AckPolicy.NACK_ON_ERROR`: a failure rewinds the
batch and it is redelivered). Each record gets its own span, parented on the W3C context in its
headers, so one request is one trace across processes however records are batched.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord

from sharinghub.contracts import DeadLetter, Outcome, OutcomeEvent, Stage, topics
from sharinghub.runtime import record_spans
from sharinghub.runtime.codec import InvalidMessage, encode
from sharinghub.runtime.record_spans import RecordSpan

log = logging.getLogger(__name__)
security_log = logging.getLogger("sharinghub.security")


def utcnow() -> datetime:
    """Aware UTC now (one place, so tests and stages agree on the clock type)."""
    return datetime.now(UTC)


@dataclass
class Output:
    """One message a stage wants published once the batch is done."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # The record it answers (metrics: end-to-end latency of outcome events); never published.
    item: Item | None = field(default=None, repr=False, compare=False)


@dataclass
class Item:
    """One consumed record with its processing span."""

    record: ConsumerRecord[bytes, bytes]
    span: RecordSpan
    # The envelope's received_at, noted by the stage once decoded (end-to-end latency metric).
    received_at: datetime | None = None
    _trace_headers: dict[str, str] | None = field(default=None, repr=False, compare=False)

    @property
    def value(self) -> bytes:
        return self.record.value or b""

    @property
    def trace_id(self) -> str:
        return self.span.trace_id_hex

    def trace_headers(self) -> dict[str, str]:
        """Headers that make a published message a child of this record's span (computed
        once per record: a delivery publishes up to four messages from one span)."""
        if self._trace_headers is None:
            self._trace_headers = self.span.headers()
        return dict(self._trace_headers)

    def output(self, topic: str, value: bytes, key: bytes | str | None) -> Output:
        if isinstance(key, str):
            key = key.encode()
        return Output(topic=topic, value=value, key=key, headers=self.trace_headers(), item=self)


@dataclass
class Batch:
    """What a processor returns: messages to publish, an optional after-publish hook that
    runs once the broker acknowledged them, before the offsets are committed (marking
    effects dispatched), and an optional hook for a batch abandoned without it (releasing
    what the batch had claimed, so its replay sends it)."""

    outputs: list[Output] = field(default_factory=list)
    after_publish: Callable[[], Awaitable[None]] | None = None
    on_abandon: Callable[[], None] | None = None


Processor = Callable[[list[Item]], Awaitable[Batch]]


def start_item_spans(stage: Stage, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Item]:
    """One CONSUMER span per record, child of the producer's context from the headers."""
    name = f"{stage.value} process"
    return [
        Item(
            record=rec,
            span=record_spans.start(
                name,
                rec.headers,
                {
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": rec.topic,
                    "messaging.destination.partition.id": str(rec.partition),
                    "messaging.kafka.offset": rec.offset,
                    "sharinghub.stage": stage.value,
                },
            ),
        )
        for rec in records
    ]


def end_item_spans(
    items: Sequence[Item], error: BaseException | None = None, *, end_ns: int | None = None
) -> None:
    """End the records' spans (at `end_ns` if given: when their messages were sent)."""
    if error is not None:
        for it in items:
            it.span.set_error(type(error).__name__)
    record_spans.finish([it.span for it in items], end_ns)


def rejection(
    item: Item,
    stage: Stage,
    exc: InvalidMessage,
    *,
    now: datetime | None = None,
    outcome: bool = True,
) -> list[Output]:
    """A bad message: a DLQ entry that keeps it whole, and a `rejected_invalid` outcome.

    The outcome is keyed by the request id when one could be recovered, otherwise by a hub-made
    id that the DLQ entry also carries, so the two can be matched (invariant 8). With
    `outcome=False` (a bad review decision: the request itself is still pending) only the DLQ
    entry is written.
    """
    now = now or utcnow()
    rec = item.record
    request_id = exc.request_id or f"unidentified:{rec.topic}:{rec.partition}:{rec.offset}"
    item.span.set_attribute("sharinghub.request_id", request_id)
    item.span.set_attribute("sharinghub.outcome", Outcome.REJECTED_INVALID.value)
    item.span.set_attribute("sharinghub.reason_code", exc.reason_code)
    dead = DeadLetter(
        dlq_id=str(uuid.uuid4()),
        stage=stage,
        source_topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        key_b64=base64.b64encode(rec.key).decode() if rec.key else None,
        request_id=request_id,
        reason_code=exc.reason_code,
        reason=exc.reason,
        payload_b64=base64.b64encode(rec.value or b"").decode(),
        failed_at=now,
    )
    event = OutcomeEvent(
        request_id=request_id,
        outcome=Outcome.REJECTED_INVALID,
        final=True,
        stage=stage,
        reason_code=exc.reason_code,
        reason=exc.reason,
        decided_at=now,
    )
    log.warning(
        "message rejected",
        extra={
            "stage": stage.value,
            "reason_code": exc.reason_code,
            "topic": rec.topic,
            "partition": rec.partition,
            "offset": rec.offset,
        },
    )
    dlq = item.output(topics.DLQ, encode(dead), request_id)
    if not outcome:
        return [dlq]
    return [dlq, item.output(topics.OUTCOMES, encode(event), request_id)]


def security_refusal(
    item: Item, stage: Stage, problem: str, request_id: str | None = None
) -> list[Output]:
    """An envelope whose stamps do not verify: kept in the DLQ, logged as a security event.

    No outcome is emitted: the message was not sent by an agency through the front door, so
    it must not be able to write an outcome under some real request's id.
    """
    security_log.error(
        "envelope refused: stamp verification failed",
        extra={
            "stage": stage.value,
            "problem": problem,
            "topic": item.record.topic,
            "partition": item.record.partition,
            "offset": item.record.offset,
        },
    )
    item.span.set_attribute("sharinghub.security_refusal", True)
    return rejection(
        item, stage, InvalidMessage("stamp_invalid", problem, request_id), outcome=False
    )


def iter_chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class RetryBackoff:
    """Exponential back-off for infrastructure failures (the batch is redelivered after it)."""

    def __init__(self, first_s: float = 0.2, max_s: float = 5.0) -> None:
        self._first = first_s
        self._max = max_s
        self._current = 0.0

    def success(self) -> None:
        self._current = 0.0

    async def failure(self) -> None:
        self._current = min(self._max, self._current * 2 or self._first)
        await asyncio.sleep(self._current)
