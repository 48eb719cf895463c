"""Pipelined batch processing for one subscription, at least once.

A stage works on a batch, hands its messages to the producer, and goes straight on to the
next batch; the earlier batch's acknowledgements, its after-publish hook (dispatch marks) and
its offset commit complete meanwhile, strictly in order, in a committer task. Sequentially, a
stage waited for all three (~15–25 ms on the embedded broker) before it fetched again, so every
record also waited for the batch ahead of it to be acknowledged, marked and committed.

What is kept from the sequential design:

* **At least once.** A batch's offsets are committed only after every message it produced
  was acknowledged and its after-publish hook ran, and only after every earlier batch was
  committed or abandoned.
* **Failures rewind.** If anything fails (processing, a send, a hook, a commit), the batch
  it happened in and every later one are abandoned, and their partitions are rewound to
  their oldest record, processed again after a back-off; earlier batches still commit. An
  abandoned batch whose messages the broker did acknowledge still runs its after-publish
  hook, so the replay finds its effects marked dispatched; one that did not runs its
  `on_abandon` hook, so the replay sends them (effects are idempotent by request id).
* **Nothing fetched is skipped.** Records handed over that do not become a batch (the rest of
  a fetch after a failure, a fetch that may predate a rewind, anything after a revocation)
  are rewound too, so the next fetch starts at the oldest record not yet committed.
* **Rebalances drain.** Before partitions are revoked, intake stops and the batches in flight
  are committed (or rewound), so a new owner starts exactly where this process stopped.

A commit that fails ambiguously (the broker applied it, the answer was lost) rewinds what it
covered: those records are processed again, and the offset they commit is the same or lower.
That is a duplicate, never a loss. `depth` bounds the batches in flight (the one being
processed included), so memory and the work redone after a failure stay bounded.
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

    seq: int
    first: dict[TopicPartition, int]  # where each partition rewinds to
    commit: dict[TopicPartition, int]  # each partition's next offset once done
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
        self.on_drained = on_drained  # e.g. write what the stage keeps in memory
        self._slots = asyncio.Semaphore(max(1, depth))
        self._seq = 0
        self._inflight: list[_Unit] = []  # from processing until committed or abandoned
        self._ready: deque[_Unit] = deque()  # handed to the committer, in order
        self._wakeup = asyncio.Event()
        self._healthy = asyncio.Event()
        self._healthy.set()
        self._idle = asyncio.Event()  # nothing in flight
        self._idle.set()
        self._intake = 0  # bumped by a failure or a revocation: fetched records go back
        self._assignment = 0  # bumped by every assignment: positions restart from commits
        self._rewind_to: dict[TopicPartition, int] = {}  # applied, to apply again on intake
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._closing = False
        self.listener = _DrainOnRevoke(self)

    @property
    def idle(self) -> bool:
        """No batch in flight (none being processed, sent or committed)."""
        return self._idle.is_set()

    # -- intake (the subscriber's handler) ---------------------------------------------------

    async def submit(self, records: Records, consumer: Any) -> None:
        """Process `records` chunk by chunk; each is sent and left to the committer.

        Returns once the last chunk was handed over, not once it is committed.
        """
        self._consumer = consumer
        if self._closing:
            return  # not committed: fetched again by whoever consumes next
        assignment = self._assignment
        if self._rewind_to:  # these may predate the rewind: fetch again from it
            self._drop(records, assignment)
            self._apply_rewind()  # (again, in case no record was handed over)
            self._rewind_to.clear()
            return
        if self._task is None:
            self._task = asyncio.create_task(self._commit_in_order())
        intake = self._intake
        chunks = list(iter_chunks(records, self._chunk))
        for n, chunk in enumerate(chunks):
            if self._may_start is not None:
                await self._may_start()
            await self._healthy.wait()
            await self._slots.acquire()
            if self._closing or intake != self._intake:
                self._slots.release()  # rewound or revoked meanwhile: the rest comes again
                self._drop([r for c in chunks[n:] for r in c], assignment)
                return
            self._seq += 1
            unit = _unit(self._seq, chunk)
            self._inflight.append(unit)
            self._idle.clear()
            await self._process(unit, chunk)
            self._ready.append(unit)  # settled in order, even if it failed
            self._wakeup.set()

    async def _process(self, unit: _Unit, chunk: Records) -> None:
        try:
            unit.items = start_item_spans(self._stage, chunk)
            unit.started, unit.t0 = time.time(), time.perf_counter()
            unit.batch = await self._processor(unit.items)
            unit.acks = await self._send_all(unit.batch.outputs)
            unit.sent_ns = time.time_ns()
        except Exception as exc:
            self._fail(exc, unit)

    def _drop(self, records: Records, assignment: int) -> None:
        """Records handed over that will not be processed now: fetched again from their
        oldest (unless the partitions were assigned afresh since: then they restart from the
        committed offsets anyway)."""
        if assignment != self._assignment or not records:
            return
        self._rewind(_first_offsets(records))

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
            except Exception as exc:  # pragma: no cover - the steps handle their own failures
                self._fail(exc, units[0])
            finally:
                for unit in units:
                    if unit.abandoned:
                        await self._abandon(unit)
                    self._inflight.remove(unit)
                    self._slots.release()
                if not self._inflight:
                    self._idle.set()

    async def _publish_done(self, unit: _Unit) -> None:
        """Wait for the broker's acknowledgements, then run the after-publish hook; a batch
        that fails here is abandoned with every later one."""
        if unit.abandoned or unit.acks is None:
            unit.abandoned = True
            return
        try:
            await unit.acks
            if unit.batch.after_publish is not None:
                await unit.batch.after_publish()
            unit.marked = True
        except Exception as exc:
            self._fail(exc, unit)

    async def _commit(self, units: list[_Unit]) -> None:
        # A failure after these were marked may have abandoned them meanwhile.
        units = [u for u in units if not u.abandoned]
        if not units:
            return
        offsets: dict[TopicPartition, int] = {}
        for unit in units:  # in order: a partition's last batch has its highest offset
            offsets.update(unit.commit)
        try:
            assert self._consumer is not None
            await self._consumer.commit(offsets)
        except Exception as exc:
            self._fail(exc, units[0])
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
        try:
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
        except Exception:
            log.exception("abandoning a batch failed", extra={"stage": self._stage.value})

    # -- failures ----------------------------------------------------------------------------

    def _fail(self, exc: BaseException, unit: _Unit) -> None:
        """Abandon `unit` and every later batch, rewind their partitions, pause intake."""
        if unit.abandoned:
            return  # an earlier failure covers it already
        doomed = [u for u in self._inflight if u.seq >= unit.seq and not u.abandoned]
        targets: dict[TopicPartition, int] = {}
        for u in doomed:
            u.abandoned = True
            for tp, offset in u.first.items():
                targets[tp] = min(offset, targets.get(tp, offset))
        self._intake += 1  # the rest of what is being handed over goes back too
        self._healthy.clear()
        self._rewind(targets)
        log.error(
            "batch failed; it will be redelivered",
            exc_info=exc,
            extra={"stage": self._stage.value, "batches_rewound": len(doomed)},
        )
        hub_metrics().batch_failed(self._stage, exc)
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover())

    def _rewind(self, targets: dict[TopicPartition, int]) -> None:
        """Seek each partition back (never forward) and keep the targets, so the next batch
        handed over, possibly fetched before the seek, is dropped and the seek applied again."""
        for tp, offset in targets.items():
            self._rewind_to[tp] = min(offset, self._rewind_to.get(tp, offset))
        self._apply_rewind()

    def _apply_rewind(self) -> None:
        if self._consumer is not None:
            for tp, offset in self._rewind_to.items():
                with contextlib.suppress(Exception):  # a partition no longer assigned
                    self._consumer.seek(tp, offset)

    async def _recover(self) -> None:
        """Intake resumes after the back-off, once every batch in flight is settled."""
        await asyncio.gather(self._backoff.failure(), self._idle.wait())
        self._healthy.set()

    # -- rebalances and shutdown -------------------------------------------------------------

    async def revoke(self) -> None:
        """Partitions are about to go: take no more of what was fetched, settle the rest."""
        self._intake += 1
        await self.drain()

    def assigned(self) -> None:
        """Partitions (re)assigned: their positions restart from the committed offsets."""
        self._assignment += 1
        self._rewind_to.clear()

    async def drain(self) -> None:
        """Wait until every batch in flight is committed or rewound."""
        await self._idle.wait()

    async def close(self, timeout_s: float = 15.0) -> None:
        """Take no new batch, let those in flight finish, stop the committer."""
        self._closing = True
        self._intake += 1
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
        await self._pipeline.revoke()
        if self._pipeline.on_drained is not None:
            try:
                await self._pipeline.on_drained()
            except Exception:
                log.exception("drained hook failed before a rebalance")

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self._pipeline.assigned()


def _first_offsets(records: Records) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        first[tp] = min(rec.offset, first.get(tp, rec.offset))
    return first


def _unit(seq: int, records: Records) -> _Unit:
    commit: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        commit[tp] = max(commit.get(tp, 0), rec.offset + 1)
    return _Unit(seq=seq, first=_first_offsets(records), commit=commit)


def _acknowledged(unit: _Unit) -> bool:
    acks = unit.acks
    return isinstance(acks, asyncio.Future) and acks.done()
