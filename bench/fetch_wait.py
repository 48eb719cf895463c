"""What a consumer's fetch wait costs on the embedded broker: arrival latency against idle CPU.

    python bench/fetch_wait.py                         # waits 10, 25, 50, 100, 250 ms
    python bench/fetch_wait.py --waits 10 50 --messages 200

Starts its own embedded broker (Tansu) on a free loopback port. For each fetch wait
(`fetch_max_wait_ms`, `SHARINGHUB_FETCH_MAX_WAIT_MS` in the hub) it measures

- arrival latency: one message at a random moment (every 40–120 ms) to an otherwise idle
  topic of three partitions, received by a consumer tailing it; send to receipt, in ms;
- idle cost: the share of one core the broker and the consumer's process use while the
  consumer polls three partitions with nothing new.

A broker that answers a waiting fetch as soon as data arrives shows a flat latency column;
one that answers only when the wait runs out shows about half the wait as median.
Linux only (reads /proc). Ends only the broker it started.
"""

# ruff: noqa: T201 - a benchmark reports by printing
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sharinghub.runtime.broker import EmbeddedBroker
from sharinghub.runtime.topics import ensure_topics
from sharinghub.tools.bench.probe import percentile
from sharinghub.tools.bench.runner import cpu_seconds

PARTITIONS = 3
SEED = 8


def partitions(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(PARTITIONS)]


async def tailing_consumer(bootstrap: str, topic: str, wait_ms: int) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=wait_ms)
    await consumer.start()
    consumer.assign(partitions(topic))
    await consumer.seek_to_end(*partitions(topic))
    return consumer


async def arrival_latency_ms(
    bootstrap: str, topic: str, wait_ms: int, messages: int
) -> list[float]:
    consumer = await tailing_consumer(bootstrap, topic, wait_ms)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=0)
    await producer.start()
    sent_at: dict[bytes, float] = {}
    latencies: list[float] = []
    rng = random.Random(SEED)  # noqa: S311 - send times, not secrets

    async def receive() -> None:
        while len(latencies) < messages:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                now = time.monotonic()
                latencies.extend((now - sent_at[r.value]) * 1000 for r in records if r.value)

    receiver = asyncio.create_task(receive())
    try:
        await asyncio.sleep(0.5)  # the consumer's first fetches are in flight
        for i in range(messages):
            await asyncio.sleep(rng.uniform(0.04, 0.12))
            key = f"m{i}".encode()
            sent_at[key] = time.monotonic()
            await producer.send(topic, key, partition=i % PARTITIONS)
        await asyncio.wait_for(receiver, timeout=30)
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    return latencies


async def idle_shares(
    bootstrap: str, topic: str, wait_ms: int, seconds: float, broker_pid: int
) -> tuple[float, float]:
    consumer = await tailing_consumer(bootstrap, topic, wait_ms)

    async def poll() -> None:
        for _ in range(10**9):  # until cancelled
            await consumer.getmany(timeout_ms=500)

    poller = asyncio.create_task(poll())
    try:
        await asyncio.sleep(1.0)  # steady
        b0, c0, t0 = cpu_seconds(broker_pid), time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        b1, c1, t1 = cpu_seconds(broker_pid), time.process_time(), time.monotonic()
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        await consumer.stop()
    if b0 is None or b1 is None:
        raise RuntimeError(f"cannot read the broker's CPU time from /proc/{broker_pid}/stat")
    return (b1 - b0) / (t1 - t0), (c1 - c0) / (t1 - t0)


async def run(
    bootstrap: str, broker_pid: int, waits: list[int], messages: int, seconds: float
) -> None:
    print(
        f"{'fetch wait':>10} {'arrival p50':>12} {'p99':>7} {'max':>7}   "
        f"{'idle CPU: broker':>16} {'consumer':>9}"
    )
    for wait in waits:
        live, idle = f"bench.fetch-wait.live.{wait}.v1", f"bench.fetch-wait.idle.{wait}.v1"
        await ensure_topics(bootstrap, [live, idle], partitions=PARTITIONS)
        latencies = await arrival_latency_ms(bootstrap, live, wait, messages)
        broker_share, consumer_share = await idle_shares(bootstrap, idle, wait, seconds, broker_pid)
        p99 = percentile(sorted(latencies), 99) or 0.0
        print(
            f"{wait:>7} ms {statistics.median(latencies):>9.1f} ms {p99:>7.1f}"
            f" {max(latencies):>7.1f}   {broker_share:>16.1%} {consumer_share:>9.1%}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waits", type=int, nargs="+", default=[10, 25, 50, 100, 250])
    parser.add_argument("--messages", type=int, default=150, help="timed messages per wait")
    parser.add_argument("--seconds", type=float, default=10.0, help="idle seconds measured")
    args = parser.parse_args()
    if min(args.waits) < 1 or args.messages < 1 or args.seconds <= 0:
        parser.error("--waits must be ≥ 1 ms, --messages ≥ 1 and --seconds > 0")
    if not os.path.exists("/proc/self/stat"):
        parser.error("needs Linux /proc to read the broker's CPU time")
    broker = EmbeddedBroker.start()
    try:
        asyncio.run(
            run(
                broker.bootstrap_servers,
                broker.process.pid,
                args.waits,
                args.messages,
                args.seconds,
            )
        )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
