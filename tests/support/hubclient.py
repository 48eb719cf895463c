"""A small Kafka client for tests: publish to the hub, read outcomes, inboxes and the DLQ."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sharinghub.contracts import topics
from sharinghub.runtime.topics import ensure_topics, partitions_of


class HubClient:
    """Reads topics from the beginning (no consumer group) and keeps everything it saw."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap = bootstrap_servers
        self.producer: AIOKafkaProducer | None = None
        self.seen: dict[str, list[Any]] = defaultdict(list)
        self._consumers: dict[str, AIOKafkaConsumer] = {}

    async def __aenter__(self) -> HubClient:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=False, acks="all"
        )
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.producer is not None
        await self.producer.stop()
        for c in self._consumers.values():
            await c.stop()

    async def publish(
        self,
        topic: str,
        value: bytes,
        key: str | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        assert self.producer is not None
        await self.producer.send_and_wait(
            topic, value, key=key.encode() if key else None, headers=headers
        )

    async def _consumer(self, topic: str) -> AIOKafkaConsumer:
        if topic in self._consumers:
            return self._consumers[topic]
        await ensure_topics(self.bootstrap, [topic])
        c = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
        )
        await c.start()
        tps = await partitions_of(c, [topic])
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        self._consumers[topic] = c
        return c

    async def poll(self, topic: str) -> list[Any]:
        """Fetch what arrived on `topic` since the last poll; returns all records seen so far."""
        c = await self._consumer(topic)
        batch = await c.getmany(timeout_ms=100)
        for records in batch.values():
            self.seen[topic].extend(records)
        return self.seen[topic]

    async def wait_for(self, topic: str, predicate, timeout_s: float = 60.0) -> Any:  # type: ignore[no-untyped-def]
        """The first record on `topic` matching `predicate` (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for rec in await self.poll(topic):
                if predicate(rec):
                    return rec
        raise TimeoutError(f"nothing matching on {topic} within {timeout_s}s")

    async def settle(self, topic: str, seconds: float) -> list[Any]:
        """Keep reading `topic` for `seconds` (to show that something did NOT arrive)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.poll(topic)
        return self.seen[topic]


def outcome_for(request_id: str):  # type: ignore[no-untyped-def]
    from sharinghub.contracts import OutcomeEvent

    def match(rec) -> bool:  # type: ignore[no-untyped-def]
        return OutcomeEvent.model_validate_json(rec.value).request_id == request_id

    return match


OUTCOMES = topics.OUTCOMES


def disclosure_for(request_id: str):  # type: ignore[no-untyped-def]
    """Matches the inbox disclosure of one request (inboxes also carry retraction notices)."""
    from sharinghub.contracts import InboxMessage

    def match(rec) -> bool:  # type: ignore[no-untyped-def]
        if b'"kind":"disclosure"' not in rec.value:
            return False
        return InboxMessage.model_validate_json(rec.value).request_id == request_id

    return match
