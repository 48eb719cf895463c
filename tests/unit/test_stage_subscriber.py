"""A stage's subscriber waits for records in its poll, and never sleeps after an empty one:
FastStream's batch subscriber sleeps `batch_timeout_ms` after an empty poll, and a request
arriving meanwhile waited for the sleep (on a quiet lane, at every hop)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import anyio
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import FakeConsumer, KafkaMessage

from sharinghub.contracts import Stage, topics
from sharinghub.runtime.app import StageService, decode_poll
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item


async def _nothing(items: list[Item]) -> Batch:
    return Batch()


def _record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topics.REQUESTS,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"{}",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=2,
        headers=[],
    )


class _Consumer:
    """Answers polls from a script: each poll takes the next answer."""

    def __init__(self, *answers: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]):
        self.answers = list(answers)
        self.polls: list[tuple[int, int | None]] = []

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self.polls.append((timeout_ms, max_records))
        return self.answers.pop(0)


@pytest.fixture
def subscriber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    async def no_sleep(delay: float) -> None:
        raise AssertionError(f"slept {delay} s after an empty poll")

    monkeypatch.setattr(anyio, "sleep", no_sleep)
    service = StageService(
        name="sharinghub-test",
        stage=Stage.CONSENT,
        settings=Settings(data_dir=tmp_path, tracing=False, batch_max_records=50),
        bootstrap_servers="127.0.0.1:9",
        subscriptions=[([topics.REQUESTS], _nothing)],
        group_id="stage-service-test",
    )
    (only,) = service.broker.subscribers
    return only


async def test_an_empty_poll_returns_at_once_without_sleeping(subscriber) -> None:  # type: ignore[no-untyped-def]
    consumer = _Consumer({})
    assert await subscriber.get_msg(consumer) == ()
    # the poll itself is the wait, as long as the setting says, for at most a batch
    assert consumer.polls == [(Settings().batch_timeout_ms, 50)]


async def test_a_poll_returns_every_partition_s_records_in_order(subscriber) -> None:  # type: ignore[no-untyped-def]
    first = [_record(0, 5), _record(0, 6)]
    second = [_record(2, 9)]
    consumer = _Consumer(
        {}, {TopicPartition(topics.REQUESTS, 0): first, TopicPartition(topics.REQUESTS, 2): second}
    )
    assert await subscriber.get_msg(consumer) == ()
    assert await subscriber.get_msg(consumer) == (*first, *second)


async def test_a_batch_s_message_is_freed_without_waiting_for_a_cycle_collection() -> None:
    """FastStream caches the decoded body on the message: the body must not be the message
    itself (a message holding itself, with its records, lives on until a cycle collection)."""
    records = (_record(0, 1), _record(1, 2))
    message = KafkaMessage(records, body=[b"{}", b"{}"], consumer=FakeConsumer())
    message.set_decoder(decode_poll)
    polled = await message.decode()
    assert polled.records == records and polled.consumer is message.consumer
    gone = weakref.ref(message)
    gc.disable()
    try:
        del message
        assert gone() is None
    finally:
        gc.enable()
