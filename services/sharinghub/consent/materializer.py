"""Reads the consent directive topic into the registry, and tells when it has caught up.

Every consent process reads *all* partitions of the (compacted) directive topic, not a share
of them as a group member would: then a process can promise read-your-writes — before it
assesses a batch of requests it waits until it has applied every directive the broker had
acknowledged at that moment. So a directive published (and acknowledged) before a request
is always honoured for that request. Applying the same event twice is a no-op in the
registry, so several processes writing the same events is safe.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError

from sharinghub.consent.store import ConsentEvent, ConsentRegistry
from sharinghub.contracts import ConsentDirectiveEvent, ConsentRevoked, DeadLetter, Stage, topics
from sharinghub.runtime.codec import InvalidMessage, decode_adapter, encode
from sharinghub.runtime.stage import utcnow

log = logging.getLogger(__name__)
MAX_IMMEDIATE_RETRIES = 5
_EVENT = TypeAdapter(ConsentDirectiveEvent)

Publish = Callable[[str, bytes, bytes | None], Awaitable[None]]


class DirectiveMaterializer:
    """Background task: directive topic → ConsentRegistry, with a caught-up barrier."""

    def __init__(
        self,
        bootstrap_servers: str,
        registry: ConsentRegistry,
        publish: Publish,
        *,
        max_bytes: int,
        fetch_max_wait_ms: int = 10,
        on_change: Callable[[set[str]], None] | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._registry = registry
        self._publish = publish
        self._max_bytes = max_bytes
        self._fetch_wait = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        # End offsets are asked on a connection of their own: on the reader's connection the
        # request would queue behind its long-poll fetch (up to fetch_max_wait_ms per batch).
        self._offsets: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._task: asyncio.Task[None] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        self._on_change = on_change

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_wait,
        )
        await self._consumer.start()
        partitions = self._partitions = await self._find_partitions()
        self._offsets = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        await self._offsets.start()
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        starts = await self._consumer.beginning_offsets(partitions)
        self._positions = dict(starts)
        self._task = asyncio.create_task(self._run(), name="consent-directive-materializer")

    async def _find_partitions(self) -> list[TopicPartition]:
        assert self._consumer is not None
        for _ in range(100):
            parts = self._consumer.partitions_for_topic(topics.CONSENT_DIRECTIVES)
            if parts:
                return [TopicPartition(topics.CONSENT_DIRECTIVES, p) for p in sorted(parts)]
            await self._consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topics.CONSENT_DIRECTIVES} has no partitions")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
        if self._offsets is not None:
            await self._offsets.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        backoff = 0.2
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=500)
            for tp, records in batches.items():
                races = 0
                while True:
                    try:
                        await self._apply(records)
                        backoff = 0.2
                        break
                    except IntegrityError:
                        # Every consent process reads the whole directive topic into the one
                        # registry: another process stored some of these first. Applying them
                        # again finds them and treats them as the duplicates they are.
                        races += 1
                        if races <= MAX_IMMEDIATE_RETRIES:
                            log.info("directives recorded concurrently by another process")
                            continue
                        log.exception("applying consent directives failed; retrying")
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
                    except Exception:  # the database is down: retry the same records
                        log.exception("applying consent directives failed; retrying")
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
                async with self._progress:
                    self._positions[tp] = records[-1].offset + 1
                    self._progress.notify_all()

    async def _apply(self, records: list) -> None:  # type: ignore[type-arg]
        events: list[ConsentEvent] = []
        sources = []
        for rec in records:
            try:
                events.append(decode_adapter(_EVENT, rec.value, max_bytes=self._max_bytes))
                sources.append(rec)
            except InvalidMessage as exc:
                await self._dead_letter(rec, exc.reason_code, exc.reason)
        results = await asyncio.to_thread(self._registry.apply, events, now=utcnow())
        if self._on_change is not None:
            # before the positions move on: a request waiting for them must not see stale data
            self._on_change(
                {
                    e.subject_id if isinstance(e, ConsentRevoked) else e.directive.subject_id
                    for e in events
                }
            )
        for rec, result in zip(sources, results, strict=True):
            if result.status == "refused":
                await self._dead_letter(rec, result.reason_code, result.reason)

    async def _dead_letter(self, rec, reason_code: str, reason: str) -> None:  # type: ignore[no-untyped-def]
        log.warning(
            "consent directive refused",
            extra={"reason_code": reason_code, "partition": rec.partition, "offset": rec.offset},
        )
        dead = DeadLetter(
            dlq_id=str(uuid.uuid4()),
            stage=Stage.CONSENT,
            source_topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            key_b64=base64.b64encode(rec.key).decode() if rec.key else None,
            reason_code=reason_code,
            reason=reason,
            payload_b64=base64.b64encode(rec.value or b"").decode(),
            failed_at=utcnow(),
        )
        await self._publish(topics.DLQ, encode(dead), rec.key)

    async def wait_caught_up(self, timeout_s: float) -> bool:
        """Wait until every directive acknowledged by the broker *now* has been applied."""
        assert self._offsets is not None
        ends = await self._offsets.end_offsets(self._partitions)

        def done() -> bool:
            return all(self._positions.get(tp, 0) >= end for tp, end in ends.items() if end > 0)

        async with self._progress:
            try:
                await asyncio.wait_for(self._progress.wait_for(done), timeout_s)
            except TimeoutError:
                return False
        return True
