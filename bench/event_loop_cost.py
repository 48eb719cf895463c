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
import os
import statistics
import subprocess
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sharinghub.runtime.broker import EmbeddedBroker
from sharinghub.runtime.lifetime import end_with_parent
from sharinghub.runtime.topics import ensure_topics
from sharinghub.tools.bench.runner import cpu_seconds, mirrored_rounds

LOOPS = ["asyncio", "uvloop"]
PAYLOAD = b'{"narrative": "' + b"x" * 1500 + b'"}'


class Run:
    """One relay process on one loop, between two fresh topics."""

    def __init__(self, bootstrap: str, loop: str, n: int) -> None:
        self.bootstrap = bootstrap
        self.source, self.sink = f"loopcost.{n}.in", f"loopcost.{n}.out"
        env = {**os.environ, "SHARINGHUB_EVENT_LOOP": loop}
        self.args = [
            sys.executable,
            "-m",
            "sharinghub.tools.bench.relay",
            bootstrap,
            self.source,
            self.sink,
            f"loopcost-{n}",
        ]
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Run:
        await ensure_topics(self.bootstrap, [self.source, self.sink], partitions=3)
        # Popen returns at once (it does not wait for the child): fine inside the loop
        self.process = subprocess.Popen(  # noqa: ASYNC220
            self.args,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=end_with_parent(),
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=False, linger_ms=1
        )
        self.consumer = AIOKafkaConsumer(
            self.sink,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
        )
        await self.producer.start()
        await self.consumer.start()
        self.received = 0
        await self.relay_and_wait(1, timeout_s=120)  # the relay has joined its group
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()
        await self.consumer.stop()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def cpu(self) -> float:
        assert self.process is not None
        value = cpu_seconds(self.process.pid)
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


async def measure(bootstrap: str, loop: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    async with Run(bootstrap, loop, n) as run:
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
