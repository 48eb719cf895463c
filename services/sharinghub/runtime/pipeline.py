"""Pipelined batch processing for one subscription, at least once.

A stage works on a batch, hands its messages to the producer, and goes straight on to the
next batch; the earlier batch's acknowledgements, its after-publish hook (dispatch marks) and
its offset commit complete meanwhile, strictly in order, in a committer task. Sequentially, a
stage waited for all three (~15–25 ms on the embedded broker) before it fetched again, so every
record also waited for the batch ahead of it to be acknowledged, marked and committed.

What is kept from the sequential design:

* **At least once.** A batch's offsets are committed only after every message it produced
  was acknowledged and its after-publish hook ran, and only after every earlier batch was
  committed; committed offsets never move backwards.
* **Failures rewind.** If anything fails (processing, a send, a hook, a commit), every batch
  not yet committed is abandoned and its partitions are rewound to their oldest uncommitted
  record, which is processed again after a back-off. An abandoned batch whose messages the
  broker did acknowledge still runs its after-publish hook, so the replay finds its effects
  marked dispatched; one that did not runs its `on_abandon` hook instead, so the replay sends
  them (effects are idempotent by request id).
* **Rebalances drain.** Before partitions are revoked, the batches in flight are committed
  (or rewound), so a new owner starts exactly where this process stopped; on shutdown too.

`depth` bounds the batches in flight (the one being processed included), so memory and the
work redone after a failure stay bounded.

Records a subscriber hands over after a failure may have been fetched before the rewind: the
first batch handed over after a failure is dropped and the rewind applied again, so the next
fetch starts from the rewound offsets (aiokafka discards data fetched for an old position).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from sharinghub.contracts import Stage
from sharinghub.runtime.metrics import hub_metrics
from sharinghub.runtime.stage import (
    Batch,
    Item,
    Output,
    Processor,
    RetryBackoff,
    end_item_spans,
    iter_chunks,
    start_item_spans,
)

log = logging.getLogger(__name__)

SendAll = Callable[[Sequence[Output]], Awaitable[Awaitable[object]]]
Records = Sequence[ConsumerRecord[bytes, bytes]]


class Consumer(Protocol):
    """What the pipeline needs of an aiokafka consumer."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...


class Rewound(Exception):
    """Marks the spans of a batch abandoned because it or an earlier one failed."""


@dataclass
class _Unit:
    """One chunk of records, from processing to commit."""

    first: dict[TopicPartition, int]  # where each partition rewinds to
    commit: dict[TopicPartition, int]  # each partition's next offset once done
    generation: int
    items: list[Item] = field(default_factory=list)
    batch: Batch = field(default_factory=Batch)
    acks: Awaitable[object] | None = None
    marked: bool = False  # the after-publish hook ran
    abandoned: bool = False  # will not be committed: processed again after a rewind
    sent_ns: int | None = None  # when its messages were handed to the producer
    started: float = 0.0
    t0: float = 0.0


class BatchPipeline:
    """Processes the batches of one subscription with up to `depth` of them in flight."""

    def __init__(
        self,
        *,
        stage: Stage,
        processor: Processor,
        send_all: SendAll,
        chunk: int,
        depth: int,
        may_start: Callable[[], Awaitable[object]] | None = None,
        on_drained: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._stage = stage
        self._processor = processor
        self._send_all = send_all
        self._chunk = chunk
        self._backoff = RetryBackoff()
        self._may_start = may_start  # e.g. wait while an urgent batch runs in this process
        self._on_drained = on_drained  # e.g. write what the stage keeps in memory
        self._slots = asyncio.Semaphore(max(1, depth))
        self._inflight: list[_Unit] = []  # from processing until committed or abandoned
        self._ready: deque[_Unit] = deque()  # handed to the committer, in order
        self._wakeup = asyncio.Event()
        self._healthy = asyncio.Event()
        self._healthy.set()
        self._idle = asyncio.Event()  # nothing in flight
        self._idle.set()
        self._generation = 0
        self._rewind_to: dict[TopicPartition, int] = {}
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._closing = False
        self.listener = _DrainOnRevoke(self)

    # -- intake (the subscriber's handler) ---------------------------------------------------

    async def submit(self, records: Records, consumer: Any) -> None:
        """Process `records` chunk by chunk; each is sent and left to the committer.

        Returns once the last chunk was handed over, not once it is committed.
        """
        self._consumer = consumer
        if self._closing:
            return  # not committed: fetched again by the next owner
        if self._rewind_to:  # these may predate the rewind: fetch again from it
            self._apply_rewind()
            return
        if self._task is None:
            self._task = asyncio.create_task(self._commit_in_order())
        generation = self._generation
        for chunk in iter_chunks(records, self._chunk):
            if self._may_start is not None:
                await self._may_start()
            await self._healthy.wait()
            await self._slots.acquire()
            if self._closing or generation != self._generation:
                self._slots.release()  # rewound meanwhile: the rest comes again
                return
            unit = _unit(chunk, generation)
            self._inflight.append(unit)
            self._idle.clear()
            await self._process(unit, chunk)
            self._ready.append(unit)  # settled in order, even if it failed
            self._wakeup.set()
            if generation != self._generation:
                return

    async def _process(self, unit: _Unit, chunk: Records) -> None:
        unit.items = start_item_spans(self._stage, chunk)
        unit.started, unit.t0 = time.time(), time.perf_counter()
        try:
            unit.batch = await self._processor(unit.items)
            unit.acks = await self._send_all(unit.batch.outputs)
            unit.sent_ns = time.time_ns()
        except Exception as exc:
            self._fail(exc)

    # -- the committer -----------------------------------------------------------------------

    async def _commit_in_order(self) -> None:
        while True:
            while not self._ready:
                self._wakeup.clear()
                await self._wakeup.wait()
            units = [self._ready.popleft()]
            try:
                await self._publish_done(units[0])
                # Batches right behind it whose messages are already acknowledged share its
                # commit: a broker round trip per batch would make the committer the limit.
                while self._ready and not units[-1].abandoned and _acknowledged(self._ready[0]):
                    units.append(self._ready.popleft())
                    await self._publish_done(units[-1])
                await self._commit([u for u in units if not u.abandoned])
                for unit in units:
                    if unit.abandoned:
                        await self._abandon(unit)
            except Exception:  # pragma: no cover - the steps handle their own failures
                log.exception("committer error", extra={"stage": self._stage.value})
            finally:
                for unit in units:
                    self._inflight.remove(unit)
                    self._slots.release()
                if not self._inflight:
                    self._idle.set()

    async def _publish_done(self, unit: _Unit) -> None:
        """Wait for the broker's acknowledgements, then run the after-publish hook; a batch
        that fails, or belongs to a generation a failure ended, is abandoned."""
        if unit.generation == self._generation and unit.acks is not None:
            try:
                await unit.acks
                if unit.batch.after_publish is not None:
                    await unit.batch.after_publish()
                unit.marked = True
            except Exception as exc:
                self._fail(exc)
        unit.abandoned = unit.generation != self._generation or not unit.marked

    async def _commit(self, units: list[_Unit]) -> None:
        # Only batches of the current generation: a failure meanwhile rewound them too.
        units = [u for u in units if u.generation == self._generation]
        if not units:
            return
        offsets: dict[TopicPartition, int] = {}
        for unit in units:  # in order: a partition's last batch has its highest offset
            offsets.update(unit.commit)
        try:
            assert self._consumer is not None
            await self._consumer.commit(offsets)
        except Exception as exc:
            self._fail(exc)
        if units[0].generation != self._generation:
            for unit in units:
                unit.abandoned = True
            return
        self._backoff.success()
        now = time.perf_counter()
        for unit in units:
            # A span covers the stage's work on the record, up to handing its messages to the
            # broker; acknowledgement and commit are the batch's bookkeeping.
            end_item_spans(unit.items, end_ns=unit.sent_ns)
            hub_metrics().batch_done(
                self._stage, unit.items, unit.batch.outputs, unit.started, now - unit.t0
            )

    async def _abandon(self, unit: _Unit) -> None:
        """A batch that will be processed again: its effects are marked dispatched if the
        broker took all its messages, released otherwise."""
        if not unit.marked and unit.acks is not None:
            try:
                await unit.acks
                if unit.batch.after_publish is not None:
                    await unit.batch.after_publish()
                unit.marked = True
            except Exception:  # noqa: S110 - the replay sends what is not marked
                pass
        if not unit.marked and unit.batch.on_abandon is not None:
            unit.batch.on_abandon()
        end_item_spans(unit.items, Rewound())

    def _fail(self, exc: BaseException) -> None:
        """Abandon every batch not yet committed and rewind their partitions."""
        self._generation += 1
        self._healthy.clear()
        for unit in self._inflight:
            for tp, offset in unit.first.items():
                self._rewind_to[tp] = min(offset, self._rewind_to.get(tp, offset))
        self._apply_rewind(keep=True)  # at once, in case nothing else is fetched
        log.error(
            "batch failed; it will be redelivered",
            exc_info=exc,
            extra={"stage": self._stage.value, "batches_rewound": len(self._inflight)},
        )
        hub_metrics().batch_failed(self._stage, exc)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover())

    def _apply_rewind(self, *, keep: bool = False) -> None:
        if self._consumer is not None:
            for tp, offset in self._rewind_to.items():
                with contextlib.suppress(Exception):  # a partition no longer assigned
                    self._consumer.seek(tp, offset)
        if not keep:
            self._rewind_to.clear()

    async def _recover(self) -> None:
        """Intake resumes after the back-off, once every abandoned batch is settled."""
        await asyncio.gather(self._backoff.failure(), self._idle.wait())
        self._healthy.set()

    # -- draining ----------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every batch in flight is committed or rewound."""
        await self._idle.wait()

    async def close(self, timeout_s: float = 15.0) -> None:
        """Take no new batch, let those in flight finish, stop the committer."""
        self._closing = True
        self._healthy.set()  # an intake waiting out a back-off sees it is closing
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), timeout_s)
        for task in (self._task, self._recovery):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._recovery = None


class _DrainOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits the batches in flight before this process gives partitions up."""

    def __init__(self, pipeline: BatchPipeline) -> None:
        self._pipeline = pipeline

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._pipeline.drain()
        if self._pipeline._on_drained is not None:
            await self._pipeline._on_drained()

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        return None


def _unit(records: Records, generation: int) -> _Unit:
    first: dict[TopicPartition, int] = {}
    commit: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        first.setdefault(tp, rec.offset)
        commit[tp] = max(commit.get(tp, 0), rec.offset + 1)
    return _Unit(first=first, commit=commit, generation=generation)


def _acknowledged(unit: _Unit) -> bool:
    acks = unit.acks
    return isinstance(acks, asyncio.Future) and acks.done()
