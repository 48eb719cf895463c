"""Publish load and observe what comes out, with the timestamps latency is computed from."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sharinghub.runtime.topics import partitions_of

Message = tuple[str, bytes, bytes, str]  # topic, key, value, id


@dataclass
class Observation:
    """First arrival time per id, and how many times each id arrived."""

    first: dict[str, float] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    per_topic: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    last_new: float = 0.0  # when an id was last seen for the first time


class Probe:
    """A producer plus a no-group consumer on the observed topics (from their current end)."""

    def __init__(
        self,
        bootstrap: str,
        watch: Sequence[str],
        id_of: Callable[[str, bytes, list[tuple[str, bytes]]], str | None],
    ) -> None:
        self.bootstrap = bootstrap
        self.watch = list(watch)
        self.id_of = id_of
        self.sent: dict[str, float] = {}
        self.seen = Observation()

    async def __aenter__(self) -> Probe:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=False,
            linger_ms=2,
            max_batch_size=1 << 20,
            acks="all",
        )
        self.consumer = _reader(self.bootstrap)
        await self.producer.start()
        await self.consumer.start()
        parts = await partitions_of(self.consumer, self.watch)
        if parts:
            self.consumer.assign(parts)
            await self.consumer.seek_to_end(*parts)
            for tp in parts:
                await self.consumer.position(tp)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.producer.stop()
        await self.consumer.stop()

    async def _read(self) -> None:
        if not self.watch:
            return
        while True:
            batch = await self.consumer.getmany(timeout_ms=50, max_records=5000)
            now = time.monotonic()
            for tp, records in batch.items():
                for rec in records:
                    rid = self.id_of(tp.topic, rec.value or b"", list(rec.headers or ()))
                    if rid is None:
                        continue
                    if rid not in self.seen.first:
                        self.seen.first[rid] = self.seen.last_new = now
                    self.seen.counts[rid] += 1
                    self.seen.per_topic[tp.topic][rid] += 1

    async def send_all(self, messages: Iterable[Message]) -> None:
        futures = []
        for topic, key, value, mid in messages:
            futures.append(
                await self.producer.send(
                    topic, value, key=key, headers=[("bench-id", mid.encode())]
                )
            )
            self.sent.setdefault(mid, time.monotonic())
        await asyncio.gather(*futures)

    async def paced(self, messages: Sequence[Message], rate: float, tick_s: float = 0.01) -> None:
        """Offer `rate` messages per second, in small groups every `tick_s`."""
        start = time.monotonic()
        i = 0
        while i < len(messages):
            due = int((time.monotonic() - start) * rate) + 1
            if due > i:
                group = messages[i:due]
                stamp = time.monotonic()
                for topic, key, value, mid in group:
                    await self.producer.send(
                        topic, value, key=key, headers=[("bench-id", mid.encode())]
                    )
                    self.sent[mid] = stamp
                i = due
            await asyncio.sleep(tick_s)
        await self.producer.flush()

    async def wait_for(
        self, ids: Iterable[str], timeout_s: float, *, stall_s: float | None = None
    ) -> bool:
        """True once every id was seen; False after `timeout_s`, or after `stall_s` in which
        no new id arrived at all (nothing is moving: what is missing is lost, or was missed
        by this live reader, which the recount from the topics tells apart)."""
        wanted = set(ids)
        start = time.monotonic()
        while (now := time.monotonic()) < start + timeout_s:
            if wanted <= self.seen.first.keys():
                return True
            if stall_s is not None and now - max(start, self.seen.last_new) > stall_s:
                return False
            await asyncio.sleep(0.05)
        return False

    def last_arrival(self, ids: Iterable[str], default: float) -> float:
        """When the last of `ids` seen so far first arrived (`default` if none was)."""
        return max((self.seen.first[i] for i in ids if i in self.seen.first), default=default)

    def latencies_ms(self, ids: Iterable[str]) -> list[float]:
        return sorted(
            (self.seen.first[i] - self.sent[i]) * 1000
            for i in ids
            if i in self.seen.first and i in self.sent
        )


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return round(sorted_values[k], 1)


def _reader(bootstrap: str) -> AIOKafkaConsumer:
    """A group-less consumer for observing topics (large fetches: outputs arrive in bursts)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=8 << 20,
    )


async def recount(
    bootstrap: str,
    watch: Sequence[str],
    id_of: Callable[[str, bytes, list[tuple[str, bytes]]], str | None],
    timeout_s: float = 120.0,
    progress_every_s: float = 15.0,
) -> Observation:
    """Read `watch` from the beginning to its current end and count every id in it.

    The live probe times arrivals; this is the ground truth the loss and duplicate counts
    come from (a message the probe missed but the topic holds is not lost).
    """
    seen = Observation()
    consumer = _reader(bootstrap)
    await consumer.start()
    try:
        parts = await partitions_of(consumer, watch)
        if not parts:
            return seen
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        # The embedded broker reports a partition's end as the base offset of its last record
        # batch + 1; a fetch returns whole batches, so every record returned is counted (none
        # is cut off at the reported end) and the tail batch is read whole. Records appended
        # after the ends were taken may be counted too: they are real.
        start = time.monotonic()
        deadline = start + timeout_s
        next_report = start + progress_every_s
        read = 0
        while True:
            positions = {tp: await consumer.position(tp) for tp in parts}
            behind = {tp: (positions[tp], ends[tp]) for tp in parts if positions[tp] < ends[tp]}
            if not behind:
                break
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"could not read {len(parts)} partitions to their end within "
                    f"{timeout_s:.0f} s ({read} records read); still behind: {_behind(behind)}"
                )
            if now >= next_report:
                sys.stderr.write(
                    f"  recount: {read} records read in {now - start:.0f} s; "
                    f"{len(behind)} of {len(parts)} partitions to go: {_behind(behind)}\n"
                )
                next_report = now + progress_every_s
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                read += len(records)
                for rec in records:
                    rid = id_of(tp.topic, rec.value or b"", list(rec.headers or ()))
                    if rid is not None:
                        seen.counts[rid] += 1
                        seen.per_topic[tp.topic][rid] += 1
    finally:
        await consumer.stop()
    return seen


def _behind(behind: dict[TopicPartition, tuple[int, int]], limit: int = 4) -> str:
    shown = [f"{tp.topic}[{tp.partition}] at {pos} of {end}" for tp, (pos, end) in behind.items()]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more
