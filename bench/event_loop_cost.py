"""What the event loop costs a Kafka hop: one relay process on asyncio's loop against uvloop.

    python bench/event_loop_cost.py                      # 3 rounds each, mirrored (~3 min)
    python bench/event_loop_cost.py --repeats 2 --rate 200 --burst 5000

The hub's plumbing, without the stages' work: the bench's bare relay (getmany → send every
record on → await the acknowledgements → commit) as one process on its own embedded broker,
run with `SHARINGHUB_EVENT_LOOP=asyncio` and with `uvloop` in mirrored rounds (A B, B A …),
each on fresh topics. For each run it measures that process's CPU (from /proc): idle (polling
an empty topic), paced (`--rate` messages/s: small batches, where the per-batch cost of the
loop and the client shows) and a burst (full batches). The 1–2 KB messages are the bench's.
Linux only. Ends only the broker and the relays it started.
"""

# ruff: noqa: T201 - a benchmark reports by printing
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sharinghub.runtime import event_loop
from sharinghub.runtime.broker import EmbeddedBroker
from sharinghub.runtime.lifetime import end_with_parent
from sharinghub.runtime.topics import ensure_topics
from sharinghub.tools.bench.runner import cpu_seconds, mirrored_rounds

LOOPS = ["asyncio", "uvloop"]
RELAY = "sharinghub.tools.bench.relay"
PAYLOAD = b'{"narrative": "' + b"x" * 1500 + b'"}'


class Run:
    """One relay process on one loop, between two fresh topics, and a client feeding it."""

    def __init__(self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, source: str):
        self.producer, self.consumer, self.source = producer, consumer, source
        self.process: subprocess.Popen[bytes] | None = None
        self.received = 0

    def cpu(self) -> float:
        value = cpu_seconds(self.process.pid) if self.process is not None else None
        if value is None:
            raise RuntimeError("the relay process ended early")
        return value

    async def send(self, count: int) -> None:
        futures = [await self.producer.send(self.source, PAYLOAD) for _ in range(count)]
        await asyncio.gather(*futures)

    async def wait_for(self, total: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.received < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"relayed {self.received} of {total} within {timeout_s} s")
            batches = await self.consumer.getmany(timeout_ms=200)
            self.received += sum(len(records) for records in batches.values())

    async def relay_and_wait(self, count: int, timeout_s: float = 60) -> None:
        await self.send(count)
        await self.wait_for(self.received + count, timeout_s)


@contextlib.asynccontextmanager
async def relay_on(bootstrap: str, loop: str, n: int) -> AsyncIterator[Run]:
    """A relay process on `loop` between fresh topics, joined and relaying; ended on exit."""
    source, sink = f"loopcost.{n}.in", f"loopcost.{n}.out"
    await ensure_topics(bootstrap, [source, sink], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=1)
    consumer = AIOKafkaConsumer(
        sink, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=10
    )
    run = Run(producer, consumer, source)
    try:
        await producer.start()
        await consumer.start()
        # Popen returns at once (it does not wait for the child): fine inside the loop
        run.process = subprocess.Popen(  # noqa: ASYNC220
            [
                sys.executable,
                "-m",
                "sharinghub.tools.bench.relay",
                bootstrap,
                source,
                sink,
                f"lc{n}",
            ],
            env={**os.environ, "SHARINGHUB_EVENT_LOOP": loop},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=end_with_parent(),
        )
        await run.relay_and_wait(1, timeout_s=120)  # the relay has joined its group
        yield run
    finally:
        await producer.stop()
        await consumer.stop()
        if run.process is not None:
            run.process.terminate()
            await asyncio.to_thread(run.process.wait, 10)


async def measure(bootstrap: str, loop: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    async with relay_on(bootstrap, loop, n) as run:
        await asyncio.sleep(1.0)
        c0 = run.cpu()
        await asyncio.sleep(args.idle_seconds)
        idle_pct = (run.cpu() - c0) / args.idle_seconds * 100
        count = int(args.rate * args.paced_seconds)
        target = run.received + count
        c0, t0 = run.cpu(), time.monotonic()
        for i in range(count):
            await run.send(1)
            await asyncio.sleep(max(0.0, t0 + (i + 1) / args.rate - time.monotonic()))
        await run.wait_for(target, timeout_s=60)
        paced_us = (run.cpu() - c0) / count * 1e6
        c0 = run.cpu()
        await run.relay_and_wait(args.burst, timeout_s=300)
        burst_us = (run.cpu() - c0) / args.burst * 1e6
    return {"idle_pct": idle_pct, "paced_us": paced_us, "burst_us": burst_us}


async def main(args: argparse.Namespace) -> None:
    event_loop.loop_name("uvloop")  # a clear error now rather than a relay that never joins
    broker = EmbeddedBroker.start()
    try:
        results: dict[str, list[dict[str, float]]] = {loop: [] for loop in LOOPS}
        for n, (i, loop) in enumerate(mirrored_rounds(LOOPS, args.repeats)):
            figures = await measure(broker.bootstrap_servers, loop, n, args)
            results[loop].append(figures)
            print(
                f"  round {i + 1} {loop:8s} idle {figures['idle_pct']:5.1f} % of a core, "
                f"CPU per message paced {figures['paced_us']:6.0f} µs, "
                f"burst {figures['burst_us']:5.0f} µs",
                flush=True,
            )
    finally:
        broker.stop()
    print(
        f"\nmedians over {args.repeats} rounds (one relay process; paced at {args.rate}/s, "
        f"burst of {args.burst})"
    )
    for loop in LOOPS:
        med = {k: statistics.median(r[k] for r in results[loop]) for k in results[loop][0]}
        print(
            f"  {loop:8s} idle {med['idle_pct']:5.1f} % of a core, CPU per message paced "
            f"{med['paced_us']:6.0f} µs, burst {med['burst_us']:5.0f} µs"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds per loop (mirrored)")
    parser.add_argument("--rate", type=float, default=100.0, help="paced messages/s")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=5000)
    asyncio.run(main(parser.parse_args()))
