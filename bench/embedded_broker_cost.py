"""What the embedded broker's CPU depends on: how full a partition is, and which request.

    python bench/embedded_broker_cost.py                   # 30,000 stored batches, 10 s a row
    python bench/embedded_broker_cost.py --batches 60000 --seconds 20

Starts its own embedded broker (Tansu) on a free loopback port, fills one topic of three
partitions with single-record batches and leaves another empty, then measures the broker's
CPU (share of one core, from /proc) under one kind of client load at a time: a consumer
tailing the topic while records arrive, a consumer polling with nothing new, end-offset and
start-offset queries (ListOffsets). Compare the rows of the full and the empty topic.
Linux only (reads /proc). Ends only the broker it started.
"""

# ruff: noqa: T201 - a benchmark reports by printing
from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sharinghub.runtime.broker import EmbeddedBroker
from sharinghub.runtime.topics import ensure_topics
from sharinghub.tools.bench.runner import cpu_seconds

Load = Callable[[], Coroutine[Any, Any, None]]  # runs until cancelled

FULL, EMPTY = "bench.broker-cost.full.v1", "bench.broker-cost.empty.v1"
PARTITIONS = 3
RECORD = b"r" * 300


def partitions(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(PARTITIONS)]


async def fill(bootstrap: str, batches: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=0)
    await producer.start()
    try:
        for i in range(batches):  # awaited one by one: one record per stored batch
            await producer.send_and_wait(FULL, RECORD, partition=i % PARTITIONS)
            if i and i % 10_000 == 0:
                print(f"  stored {i} batches …", flush=True)
    finally:
        await producer.stop()


def tail_while_appending(bootstrap: str, topic: str) -> Load:
    async def load() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
        await consumer.start()
        await producer.start()
        consumer.assign(partitions(topic))
        await consumer.seek_to_end(*partitions(topic))

        async def append() -> None:
            for i in range(10**9):  # ~50 records/s until cancelled
                await producer.send_and_wait(topic, RECORD, partition=i % PARTITIONS)
                await asyncio.sleep(0.02)

        appender = asyncio.create_task(append())
        try:
            for _ in range(10**9):
                await consumer.getmany(timeout_ms=500)
        finally:
            appender.cancel()
            await consumer.stop()
            await producer.stop()

    return load


def poll_with_nothing_new(bootstrap: str, topic: str) -> Load:
    async def load() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10)
        await consumer.start()
        consumer.assign(partitions(topic))
        await consumer.seek_to_end(*partitions(topic))
        try:
            for _ in range(10**9):
                await consumer.getmany(timeout_ms=500)
        finally:
            await consumer.stop()

    return load


def list_offsets(bootstrap: str, topic: str, *, end: bool) -> Load:
    async def load() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            for _ in range(10**9):  # ten queries a second
                if end:
                    await consumer.end_offsets(partitions(topic))
                else:
                    await consumer.beginning_offsets(partitions(topic))
                await asyncio.sleep(0.1)
        finally:
            await consumer.stop()

    return load


async def broker_share(pid: int, load: Load, seconds: float) -> float:
    task = asyncio.create_task(load())
    await asyncio.sleep(1.0)  # connected and steady
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1 = cpu_seconds(pid)
    if cpu0 is None or cpu1 is None:
        raise RuntimeError(f"cannot read the broker's CPU time from /proc/{pid}/stat")
    share = (cpu1 - cpu0) / (time.monotonic() - t0)
    if task.done():  # a load runs until cancelled: it ended early, so it failed
        raise RuntimeError("the load stopped before it was measured") from task.exception()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return share


async def run(bootstrap: str, pid: int, batches: int, seconds: float) -> None:
    await ensure_topics(bootstrap, [FULL, EMPTY], partitions=PARTITIONS)
    print(f"storing {batches} single-record batches in {FULL} ({PARTITIONS} partitions) …")
    await fill(bootstrap, batches)
    loads = {
        "consumer tailing while 50 records/s arrive": tail_while_appending,
        "consumer polling, nothing new (10 ms fetch wait)": poll_with_nothing_new,
    }
    print(f"\n{'broker CPU, share of one core':50s} {'full topic':>11} {'empty topic':>12}")
    for label, make in loads.items():
        full = await broker_share(pid, make(bootstrap, FULL), seconds)
        empty = await broker_share(pid, make(bootstrap, EMPTY), seconds)
        print(f"{label:50s} {full:>10.0%} {empty:>12.0%}", flush=True)
    for end in (True, False):
        label = f"ListOffsets ({'end' if end else 'start'}), 10 queries/s"
        full = await broker_share(pid, list_offsets(bootstrap, FULL, end=end), seconds)
        empty = await broker_share(pid, list_offsets(bootstrap, EMPTY, end=end), seconds)
        print(f"{label:50s} {full:>10.0%} {empty:>12.0%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=30_000, help="batches in the full topic")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds a row")
    args = parser.parse_args()
    if args.batches < 1 or args.seconds <= 0:
        parser.error("--batches must be ≥ 1 and --seconds > 0")
    broker = EmbeddedBroker.start()
    try:
        asyncio.run(run(broker.bootstrap_servers, broker.process.pid, args.batches, args.seconds))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
