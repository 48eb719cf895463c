"""A stage's FastStream wiring against the real embedded broker: records published to its
topic reach its processor batch by batch, what it returns is published, and no batch costs a
worker-thread round trip on the way in (FastStream resolves a `Context`-injected parameter in
a worker thread; the handler takes the message as its body instead)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sharinghub.contracts import Stage, topics
from sharinghub.runtime.app import StageService
from sharinghub.runtime.event_loop import running_loop_name
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item
from sharinghub.runtime.topics import ensure_topics, partitions_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SINK = "stage-service.sink.v1"


@pytest.fixture
def worker_thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the functions anyio ran in a worker thread (FastStream's dependency
    injection runs a synchronous dependency that way)."""
    calls: list[str] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(func, "__qualname__", repr(func)))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return calls


async def test_batches_reach_the_processor_and_its_outputs_are_published(
    bootstrap: str, tmp_path: Path, worker_thread_calls: list[str]
) -> None:
    seen: list[bytes] = []
    batch_sizes: list[int] = []

    async def relay(items: list[Item]) -> Batch:
        batch_sizes.append(len(items))
        seen.extend(item.value for item in items)
        return Batch([item.output(SINK, b"out:" + item.value, None) for item in items])

    settings = Settings(data_dir=tmp_path, tracing=False, session_timeout_ms=6000)
    service = StageService(
        name="sharinghub-test",
        stage=Stage.CONSENT,
        settings=settings,
        bootstrap_servers=bootstrap,
        subscriptions=[([topics.REQUESTS], relay)],
        group_id="stage-service-test",
    )
    await ensure_topics(bootstrap, [SINK], partitions=1)
    await service.app.start()
    # /healthz names the loop the service runs on (here the test's own)
    assert service.health.event_loop == running_loop_name()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await producer.start()
    await reader.start()
    try:
        reader.assign(await partitions_of(reader, [SINK]))
        await reader.seek_to_beginning()
        published = [f"r{n}".encode() for n in range(3)]
        out: list[bytes] = []
        for value in published:  # one at a time: three batches, not one
            await producer.send_and_wait(topics.REQUESTS, value, key=b"subject")
            for _ in range(200):
                got = await reader.getmany(timeout_ms=100)
                out.extend(r.value for rs in got.values() for r in rs if r.value)
                if len(out) == len(seen) == published.index(value) + 1:
                    break
        assert seen == published
        assert batch_sizes == [1, 1, 1]
        assert out == [b"out:" + v for v in published]
        assert worker_thread_calls == []
    finally:
        await reader.stop()
        await producer.stop()
        await service.app.stop()
