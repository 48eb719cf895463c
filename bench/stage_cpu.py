# ruff: noqa: T201 -- a benchmark prints its figures
"""CPU per request of each stage's own work, without Kafka: where a request's time goes.

Run: ``python bench/stage_cpu.py [--requests 3000] [--batch 100] [--no-tracing]
[--database-url URL]``. Each stage's real batch processor (the function its FastStream
subscriber calls) is driven with the realistic load of `sharinghub bench`, batch after
batch: consent's output feeds policy, policy's feeds redaction, redaction's the delivery
gate, with real stores (SQLite in a temporary folder unless ``--database-url``), real stamps,
and spans exported as the services do. It reports the process CPU time (this process and its
worker threads) per request of each stage, with the span start/end and the after-publish
marks included, so the sum is what the four stages cost a request apart from the broker and
the Kafka client.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from aiokafka.structs import ConsumerRecord

from sharinghub.consent.store import ConsentRegistry
from sharinghub.contracts import Stage, topics
from sharinghub.runtime.app import StageService, settle_heap
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.schema import upgrade
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item, Output, end_item_spans, start_item_spans
from sharinghub.runtime.stamps import StageKeys
from sharinghub.runtime.telemetry import setup_tracing
from sharinghub.tools.bench.generator import generate
from sharinghub.tools.bench.runner import messages

Processor = Callable[[list[Item]], Awaitable[Batch]]
STAGES = (
    ("consent", Stage.CONSENT, topics.REQUESTS),
    ("policy", Stage.POLICY, topics.CONSENT_CHECKED),
    ("redaction", Stage.REDACTION, topics.POLICY_DECIDED),
    ("delivery", Stage.DELIVERY, topics.REDACTED),
)

NEXT_TOPIC = {
    Stage.CONSENT: topics.CONSENT_CHECKED,
    Stage.POLICY: topics.POLICY_DECIDED,
    Stage.REDACTION: topics.REDACTED,
}


class _CaughtUp:
    """Stands in for the directive reader: the registry is filled before the run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def wait_caught_up(self, timeout_s: float) -> bool:
        return True


def _processors(name: str, settings: Settings) -> tuple[StageService, dict[str, Processor]]:
    """Build the stage's app (no broker connection) and capture its processors by topic."""
    found: dict[str, Processor] = {}

    def capture(
        self: StageService, topics_in: Sequence[str], processor: Processor, _g: str
    ) -> None:
        for topic in topics_in:
            found[topic] = processor

    module = __import__(f"sharinghub.{name}.app", fromlist=["create_app"])
    with mock.patch.object(StageService, "_subscribe", capture):
        service = module.create_app(settings, "127.0.0.1:9")
    return service, found


def _records(
    topic: str, outputs: Sequence[Output], start: int
) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            topic=topic,
            partition=0,
            offset=start + i,
            timestamp=0,
            timestamp_type=0,
            key=o.key,
            value=o.value,
            checksum=None,
            serialized_key_size=len(o.key or b""),
            serialized_value_size=len(o.value),
            headers=[(k, v.encode()) for k, v in o.headers.items()],
        )
        for i, o in enumerate(outputs)
    ]


async def run(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="stage-cpu-"))
    settings = Settings(
        data_dir=data,
        database_url=args.database_url or f"sqlite:///{data / 'hub.db'}",
        tracing=not args.no_tracing,
    )
    StageKeys.generate(settings.resolved_keys_file())
    upgrade(settings.database_url, lock_dir=data)
    provider = setup_tracing("stage-cpu", settings)
    load = generate(args.requests + args.batch, narrative_words=args.narrative_words)
    registry = ConsentRegistry(create_engine_for(settings.database_url))
    from datetime import UTC, datetime

    registry.apply(load.directives, now=datetime.now(UTC))
    # the consent stage's directive reader is replaced for the whole run (its start-up hook
    # builds it when called)
    mock.patch("sharinghub.consent.app.DirectiveMaterializer", _CaughtUp).start()
    services = {name: _processors(name, settings) for name, _, _ in STAGES}
    for service, _ in services.values():
        for hook in service._startup:  # the (stubbed) directive reader
            if hook.__name__ == "start_materializer":
                await hook()
    settle_heap(settings.batch_max_records)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:  # worker-thread work inline, so the profile sees it

        async def inline(fn: Callable[..., Any], /, *a: Any, **kw: Any) -> Any:
            return fn(*a, **kw)

        mock.patch("asyncio.to_thread", inline).start()
    cpu = {name: 0.0 for name, _, _ in STAGES}
    counted = {name: 0 for name, _, _ in STAGES}
    # requests as agencies publish them (bulk lane; the urgent topics take the same path)
    inputs = [
        Output(topic=topics.REQUESTS, value=value, key=key)
        for _topic, key, value, _id in messages(load)
    ]
    offset = 0
    for first in range(0, len(inputs), args.batch):
        warm = first < args.batch  # the first batch warms caches and is not counted
        wave = inputs[first : first + args.batch]
        for name, stage, topic in STAGES:
            if not wave:
                break
            processor = services[name][1][topic]
            records = _records(topic, wave, offset)
            offset += len(records)
            if profiler is not None and not warm:
                profiler.enable()
            t0 = time.process_time()
            items = start_item_spans(stage, records)
            batch = await processor(items)
            if batch.after_publish is not None:
                await batch.after_publish()
            end_item_spans(items)
            if profiler is not None:
                profiler.disable()
            if not warm:
                cpu[name] += time.process_time() - t0
                counted[name] += len(records)
            nxt = NEXT_TOPIC.get(stage)
            if nxt is None:
                break
            # what the next stage consumes (both lanes go the same way here)
            wave = [o for o in batch.outputs if o.topic in (nxt, topics.lane(nxt, True))]
            for o in wave:
                o.topic = nxt
    t0 = time.process_time()
    if provider is not None:  # spans still queued for export are part of the cost
        provider.force_flush()
    flush = time.process_time() - t0
    n = counted["consent"]
    print(
        f"{n} requests in batches of {args.batch}, tracing {'off' if args.no_tracing else 'on'}, "
        f"{settings.database_url.split(':')[0]}"
    )
    total = 0.0
    for name, _, _ in STAGES:
        per_request = cpu[name] / max(n, 1) * 1e6
        total += per_request
        print(f"  {name:10s} {per_request:7.0f} µs CPU per request ({counted[name]} records)")
    if provider is not None:
        print(f"  {'(export)':10s} {flush / max(n, 1) * 1e6:7.0f} µs CPU per request left to flush")
        total += flush / max(n, 1) * 1e6
    print(f"  {'total':10s} {total:7.0f} µs CPU per request")
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile (worker-thread work run inline): {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--narrative-words", type=int, default=150)
    parser.add_argument("--no-tracing", action="store_true")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the stages")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
