"""Broker resolution: external → testcontainers (if asked and Docker runs) → embedded Tansu."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sharinghub.runtime.broker import (
    BrokerUnavailable,
    EmbeddedBroker,
    ExternalBroker,
    docker_available,
    resolve_broker,
)
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_external_broker_wins_when_bootstrap_servers_are_set() -> None:
    broker = resolve_broker(Settings(kafka_bootstrap_servers="127.0.0.1:1", broker="auto"))
    assert isinstance(broker, ExternalBroker)
    assert broker.bootstrap_servers == "127.0.0.1:1"


def test_external_without_address_is_a_clear_error() -> None:
    with pytest.raises(BrokerUnavailable, match="KAFKA_BOOTSTRAP_SERVERS"):
        resolve_broker(Settings(kafka_bootstrap_servers=None, broker="external"))


def test_testcontainers_path_refuses_clearly_without_docker() -> None:
    if docker_available():
        pytest.skip("a Docker engine is available here; the refusal path cannot be shown")
    with pytest.raises(BrokerUnavailable, match="no Docker engine"):
        resolve_broker(Settings(kafka_bootstrap_servers=None, broker="testcontainers"))


@pytest.mark.skipif(
    not docker_available(), reason="no Docker engine: testcontainers cannot start Kafka"
)
def test_testcontainers_kafka_round_trip() -> None:
    broker = resolve_broker(Settings(kafka_bootstrap_servers=None, broker="testcontainers"))
    try:
        asyncio.run(_round_trip(broker.bootstrap_servers))
    finally:
        broker.stop()


def test_embedded_broker_round_trip_and_stop() -> None:
    broker = EmbeddedBroker.start()
    try:
        assert broker.bootstrap_servers.startswith("127.0.0.1:")
        asyncio.run(_round_trip(broker.bootstrap_servers))
    finally:
        broker.stop()
    assert broker.process.poll() is not None


async def _round_trip(bootstrap: str) -> None:
    await ensure_topics(bootstrap, ["rt.v1"], partitions=3)
    await ensure_topics(bootstrap, ["rt.v1"], partitions=3)  # idempotent
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    await producer.send_and_wait("rt.v1", b"hello", key=b"k", partition=1)
    await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    tp = TopicPartition("rt.v1", 1)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    batch = await consumer.getmany(tp, timeout_ms=5000)
    await consumer.stop()
    assert [r.value for r in batch[tp]] == [b"hello"]
