"""The pipelined batch loop: in-order commits, and failures that rewind without losing,
skipping or duplicating work. A scripted consumer and producer stand in for Kafka; the real
broker runs the same code in the e2e suite."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from sharinghub.contracts import Stage
from sharinghub.runtime import record_spans
from sharinghub.runtime.pipeline import BatchPipeline
from sharinghub.runtime.stage import Batch, Item, Output

TP = TopicPartition("sharinghub.requests.v1", 0)
TP2 = TopicPartition("sharinghub.requests.v1", 1)


def records(start: int, n: int, tp: TopicPartition = TP) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            topic=tp.topic,
            partition=tp.partition,
            offset=o,
            timestamp=0,
            timestamp_type=0,
            key=None,
            value=str(o).encode(),
            checksum=None,
            serialized_key_size=0,
            serialized_value_size=1,
            headers=[],
        )
        for o in range(start, start + n)
    ]


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await asyncio.sleep(0)
        self.commits.append(dict(offsets))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))


class Harness:
    """A processor that echoes each record, a producer whose acknowledgements the test
    releases (or fails) one batch at a time, and the hooks' calls."""

    def __init__(self, depth: int = 3, chunk: int = 100) -> None:
        self.consumer = FakeConsumer()
        self.acks: list[asyncio.Future[None]] = []
        self.sent: list[list[bytes]] = []
        self.marked: list[list[bytes]] = []
        self.released: list[list[bytes]] = []
        self.fail_processing_at: int | None = None
        self.pipeline = BatchPipeline(
            stage=Stage.CONSENT,
            processor=self.process,
            send_all=self.send_all,
            chunk=chunk,
            depth=depth,
        )
        self.pipeline._backoff._first = 0.01  # keep the test quick

    async def process(self, items: list[Item]) -> Batch:
        values = [it.value for it in items]
        if self.fail_processing_at is not None and int(values[0]) == self.fail_processing_at:
            raise RuntimeError("database unavailable")

        async def mark() -> None:
            self.marked.append(values)

        return Batch(
            [Output(topic="out", value=v) for v in values],
            after_publish=mark,
            on_abandon=lambda: self.released.append(values),
        )

    async def send_all(self, outputs: Sequence[Output]) -> asyncio.Future[None]:
        self.sent.append([o.value for o in outputs])
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack

    async def submit(self, recs: list[ConsumerRecord[bytes, bytes]]) -> None:
        await self.pipeline.submit(recs, self.consumer)

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)


async def test_batches_are_processed_ahead_and_committed_in_order_together() -> None:
    h = Harness(depth=3)
    await h.submit(records(0, 2))
    await h.submit(records(2, 3))
    assert h.sent == [[b"0", b"1"], [b"2", b"3", b"4"]]  # both sent before any ack
    assert h.consumer.commits == []
    h.acks[1].set_result(None)  # the later one acknowledged first: still nothing committed
    await h.settle()
    assert h.consumer.commits == []
    h.acks[0].set_result(None)
    await h.settle()
    assert h.consumer.commits == [{TP: 5}]  # both acknowledged by now: one commit
    assert h.marked == [[b"0", b"1"], [b"2", b"3", b"4"]]
    await h.submit(records(5, 1))
    h.acks[2].set_result(None)
    await h.settle()
    assert h.consumer.commits == [{TP: 5}, {TP: 6}]
    await h.pipeline.close()


async def test_depth_bounds_the_batches_in_flight() -> None:
    h = Harness(depth=2)
    await h.submit(records(0, 1))
    await h.submit(records(1, 1))
    third = asyncio.create_task(h.submit(records(2, 1)))
    await h.settle()
    assert len(h.sent) == 2 and not third.done()  # waits for a slot
    h.acks[0].set_result(None)
    await asyncio.wait_for(third, 1)
    assert len(h.sent) == 3
    for ack in h.acks[1:]:
        ack.set_result(None)
    await h.pipeline.drain()
    assert h.consumer.commits[0] == {TP: 1} and h.consumer.commits[-1] == {TP: 3}
    await h.pipeline.close()


async def test_a_failed_send_rewinds_everything_not_committed() -> None:
    h = Harness(depth=3)
    await h.submit([*records(0, 2), *records(0, 1, TP2)])
    await h.submit(records(2, 2))
    await h.submit(records(4, 1))
    h.acks[0].set_result(None)
    await h.settle()
    assert h.consumer.commits == [{TP: 2, TP2: 1}]
    h.acks[2].set_result(None)  # the broker took the third batch …
    h.acks[1].set_exception(RuntimeError("broker unavailable"))  # … but not the second
    await h.pipeline.drain()
    assert h.consumer.commits == [{TP: 2, TP2: 1}]  # nothing after the failure
    assert (TP, 2) in h.consumer.seeks  # rewound to the oldest uncommitted record
    assert h.released == [[b"2", b"3"]]  # not acknowledged: the replay sends it
    assert h.marked[-1] == [b"4"]  # acknowledged: marked, so the replay skips it
    # records handed over before the rewind took effect are dropped, the rewind re-applied
    seeks = len(h.consumer.seeks)
    await h.submit(records(5, 1))
    assert len(h.sent) == 3 and len(h.consumer.seeks) > seeks
    # the replay, after the back-off, is processed and committed as usual
    replay = asyncio.create_task(h.submit(records(2, 3)))
    await asyncio.wait_for(replay, 2)
    h.acks[3].set_result(None)
    await h.pipeline.drain()
    assert h.sent[-1] == [b"2", b"3", b"4"]
    assert h.consumer.commits[-1] == {TP: 5}
    await h.pipeline.close()


async def test_a_processing_error_rewinds_it_and_what_follows_but_earlier_batches_commit() -> None:
    h = Harness(depth=3)
    h.fail_processing_at = 3
    await h.submit(records(0, 3))
    await h.submit(records(3, 2))  # fails while the first batch is still in flight
    h.acks[0].set_result(None)
    await h.pipeline.drain()
    assert h.consumer.commits == [{TP: 3}]  # the earlier batch is not redone
    assert (TP, 3) in h.consumer.seeks and (TP, 0) not in h.consumer.seeks
    h.fail_processing_at = None
    await h.submit(records(7, 1))  # fetched before the rewind: dropped
    replay = asyncio.create_task(h.submit(records(3, 2)))
    await asyncio.wait_for(replay, 2)
    h.acks[-1].set_result(None)
    await h.pipeline.drain()
    assert h.consumer.commits == [{TP: 3}, {TP: 5}]  # never backwards
    await h.pipeline.close()


async def test_the_rest_of_a_fetch_after_a_failure_is_rewound_on_every_partition() -> None:
    h = Harness(depth=3, chunk=2)
    h.fail_processing_at = 10
    # one fetch: TP then TP2; the TP chunk fails, the TP2 chunks are never processed
    await h.submit([*records(10, 2), *records(20, 2, TP2), *records(22, 2, TP2)])
    await h.pipeline.drain()
    assert h.sent == [] and h.consumer.commits == []
    assert (TP, 10) in h.consumer.seeks and (TP2, 20) in h.consumer.seeks


async def test_a_fetch_handed_over_after_a_failure_is_rewound_even_on_other_partitions() -> None:
    h = Harness(depth=3)
    await h.submit(records(0, 2))
    h.acks[0].set_exception(RuntimeError("broker unavailable"))
    await h.pipeline.drain()
    # fetched before the rewind took effect, on a partition the failure did not touch
    await h.submit(records(5, 3, TP2))
    assert (TP2, 5) in h.consumer.seeks and len(h.sent) == 1
    await h.pipeline.close()


async def test_an_intake_waiting_for_a_slot_when_an_ack_fails_goes_back_whole() -> None:
    h = Harness(depth=1)
    await h.submit(records(0, 2))
    waiting = asyncio.create_task(h.submit([*records(2, 2), *records(0, 2, TP2)]))
    await h.settle()
    h.acks[0].set_exception(RuntimeError("broker unavailable"))
    await asyncio.wait_for(waiting, 2)
    await h.pipeline.drain()
    assert len(h.sent) == 1  # the waiting fetch was never processed …
    assert {(TP, 0), (TP2, 0)} <= set(h.consumer.seeks)  # … and is fetched again
    await h.pipeline.close()


async def test_a_failure_before_processing_rewinds_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> list[Item]:
        raise ValueError("span could not start")

    monkeypatch.setattr("sharinghub.runtime.pipeline.start_item_spans", broken)
    h = Harness(depth=2)
    await h.submit(records(4, 2))
    await asyncio.wait_for(h.pipeline.drain(), 2)  # settled, not stuck in flight
    assert h.consumer.commits == [] and (TP, 4) in h.consumer.seeks
    await h.pipeline.close()


def test_a_header_without_a_value_is_no_trace_context() -> None:
    span = record_spans.start("consent process", [("traceparent", None)], {})
    assert span.parent_id is None


async def test_a_revocation_stops_the_intake_and_commits_what_is_in_flight() -> None:
    h = Harness(depth=2)
    await h.submit(records(0, 2))
    blocked = asyncio.create_task(h.submit(records(2, 4)))  # waits for the only free slot …
    h.pipeline._slots = asyncio.Semaphore(0)
    await h.settle()
    revoke = asyncio.create_task(h.pipeline.listener.on_partitions_revoked([TP]))
    await h.settle()
    h.acks[0].set_result(None)
    await asyncio.wait_for(revoke, 2)
    assert h.consumer.commits == [{TP: 2}]
    await h.pipeline.listener.on_partitions_assigned([TP])
    h.pipeline._slots.release()
    seeks = list(h.consumer.seeks)
    await asyncio.wait_for(blocked, 2)
    assert len(h.sent) == 1  # … and, revoked meanwhile, is left to the committed offsets
    assert h.consumer.seeks == seeks  # no seek into the new assignment
    await h.pipeline.close()


async def test_a_failed_commit_rewinds_but_keeps_the_marks() -> None:
    h = Harness(depth=2)

    async def refuse(offsets: dict[TopicPartition, int]) -> None:
        raise RuntimeError("rebalance in progress")

    h.consumer.commit = refuse  # type: ignore[method-assign]
    await h.submit(records(0, 2))
    h.acks[0].set_result(None)
    await h.pipeline.drain()
    assert h.marked == [[b"0", b"1"]] and h.released == []
    assert (TP, 0) in h.consumer.seeks
    await h.pipeline.close()


async def test_closing_takes_no_new_batch_and_finishes_those_in_flight() -> None:
    h = Harness()
    await h.submit(records(0, 2))
    closing = asyncio.create_task(h.pipeline.close(timeout_s=2))
    await h.settle()
    await h.submit(records(2, 2))  # after close: left for the next owner
    assert len(h.sent) == 1
    h.acks[0].set_result(None)
    await asyncio.wait_for(closing, 2)
    assert h.consumer.commits == [{TP: 2}]


@pytest.mark.parametrize("depth", [1, 4])
async def test_a_steady_stream_commits_every_record_once(depth: int) -> None:
    h = Harness(depth=depth, chunk=3)

    async def acknowledge() -> None:
        while True:  # the broker, acknowledging every batch some time after it is sent
            for ack in h.acks:
                if not ack.done():
                    ack.set_result(None)
            await asyncio.sleep(0.001)

    acker = asyncio.create_task(acknowledge())
    for start in range(0, 30, 10):
        await h.submit(records(start, 10))
    await asyncio.wait_for(h.pipeline.drain(), 2)
    acker.cancel()
    assert [v for batch in h.sent for v in batch] == [str(i).encode() for i in range(30)]
    committed = [c[TP] for c in h.consumer.commits]
    assert committed == sorted(committed) and committed[-1] == 30
    await h.pipeline.close()
