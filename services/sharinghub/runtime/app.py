"""The one place a stage is wired: broker, batch subscriber, publishing, lifecycle.

`StageService` turns a batch of Kafka records into a call of the stage's processor and
publishes what the processor returns; it holds no decision logic of its own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber

from sharinghub.contracts import Stage
from sharinghub.contracts import topics as hub_topics
from sharinghub.runtime.event_loop import running_loop_name
from sharinghub.runtime.health import HEARTBEAT_S, Health
from sharinghub.runtime.metrics import (
    SAMPLE_INTERVAL_S,
    ConsumerLagSampler,
    MetricsEndpoint,
    Sample,
    setup_metrics,
)
from sharinghub.runtime.periodic import PeriodicTask
from sharinghub.runtime.pipeline import BatchPipeline
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.stage import Batch, Item, Output
from sharinghub.runtime.topics import ensure_topics

log = logging.getLogger(__name__)

SERVICE_VERSION = "0.1.0"

Hook = Callable[[], Awaitable[None]]

# Human-paced topics: polled less often (see `Settings.control_fetch_max_wait_ms`).
CONTROL_TOPICS = frozenset({hub_topics.REVIEW_DECISIONS, hub_topics.RETRACTION_ACKS})


def group_for(group_id: str, topics_in: Sequence[str]) -> str:
    """The consumer group of a subscription. The urgent lane has its own (its fetches never
    queue behind bulk work) and so do the human-paced control topics: in a group with the
    request lane, every start of either member would stop both for a rebalance."""
    if is_urgent_lane(topics_in):
        return f"{group_id}-urgent"
    if set(topics_in) <= CONTROL_TOPICS:
        return f"{group_id}-control"
    return group_id


def is_urgent_lane(topics_in: Sequence[str]) -> bool:
    """A subscription belongs to the urgent lane when all its topics are urgent-lane ones."""
    return all(hub_topics.is_urgent(t) for t in topics_in)


class Polled(NamedTuple):
    """One poll's records, undecoded, and the consumer that fetched them (to commit)."""

    records: tuple[ConsumerRecord[Any, Any], ...]
    consumer: Any


async def decode_poll(msg: KafkaMessage) -> Polled:
    """The handler's body: the poll's records, undecoded, and their consumer.

    Bodies are decoded by the stage (so a bad one becomes a DLQ entry, not a crash). A handler
    that asks FastStream for the message as a second, `Context`-injected parameter has it
    resolved in a worker thread, a thread round trip per batch: with it, CPU per request in a
    burst was 3.2–3.6 ms against 2.7–3.1 without (three alternated pairs of `sharinghub bench
    --quick`). Not the message itself: FastStream caches the decoded body on the message, and
    a message holding itself would outlive its batch until a cycle collection.
    """
    raw = msg.raw_message
    return Polled(raw if isinstance(raw, tuple) else (raw,), msg.consumer)


class _WaitingBatchSubscriber(BatchSubscriber):
    """FastStream's batch subscriber without the sleep after an empty poll.

    FastStream's loop polls with `getmany(timeout_ms=batch_timeout_ms)`, which already waits
    for data and returns as soon as any arrives; after an empty poll it then sleeps another
    `batch_timeout_ms`, and a request arriving meanwhile waited for the sleep to end. On a
    quiet lane (the urgent one, most of the time) every hop paid up to that much. Here the
    poll itself is the wait.
    """

    __slots__ = ()

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[Any, Any], ...]:
        batches = await consumer.getmany(
            timeout_ms=self.batch_timeout_ms, max_records=self.max_records
        )
        return tuple(record for records in batches.values() for record in records)


def _without_idle_sleep(subscriber: object) -> None:
    # FastStream builds the subscriber itself; the subclass adds no state (same slots).
    if type(subscriber) is not BatchSubscriber:
        raise TypeError(
            f"expected FastStream's BatchSubscriber, got {type(subscriber).__name__}: "
            "check `_WaitingBatchSubscriber` against this FastStream version"
        )
    subscriber.__class__ = _WaitingBatchSubscriber


# The young-generation threshold is set above what one full batch holds alive at once. A
# 200-record batch of bench envelopes holds ~30,000 container objects while it is processed
# (the largest young generation seen at a collection), nearly all freed by reference counting
# when the batch ends. With a threshold of 20,000 almost every batch started a collection that
# found next to nothing: 160 collections of ~15 ms CPU (~55 ms wall, the process stopped) per
# 9,000 requests, ~8 % of the hub's CPU. With 100,000: 3–4 collections per run.
GC_YOUNG_THRESHOLD_MIN = 100_000
GC_QUIET_S = 2.0  # how often a process with no batch in flight collects its young objects
GC_YOUNG_OBJECTS_PER_RECORD = 500  # headroom over the ~150 a record holds while processed


def gc_young_threshold(batch_max_records: int) -> int:
    """The young-generation threshold for batches of up to `batch_max_records` records."""
    return max(GC_YOUNG_THRESHOLD_MIN, batch_max_records * GC_YOUNG_OBJECTS_PER_RECORD)


def settle_heap(batch_max_records: int) -> None:
    """Move everything built at start-up (modules, Presidio, Cedar packs, caches' skeletons)
    out of the collector's sight, and collect young objects only once more of them pile up
    than a full batch keeps alive.

    A full collection otherwise re-scans hundreds of thousands of start-up objects that never
    die; measured, that was a third of the CPU of parsing an envelope. Cycles created later are
    still collected, so memory stays bounded.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(gc_young_threshold(batch_max_records), middle, old)


class _JoinAtOnceBroker(KafkaBroker):
    """Starts its subscribers together instead of one after another.

    aiokafka's consumer start returns only once the consumer's group has given it partitions
    (~3–5 s per group on the embedded broker, one broker round of joining on Kafka), and a
    stage process has up to five groups: joined in turn, a process was ready after 15–25 s.
    """

    async def start(self) -> None:
        await self.connect()
        await asyncio.gather(*(sub.start() for sub in self.subscribers))
        for pub in self.publishers:
            await pub.start()
        self.running = True


class StageService:
    """A FastStream app around one stage's batch processor."""

    def __init__(
        self,
        *,
        name: str,
        stage: Stage,
        settings: Settings,
        bootstrap_servers: str,
        subscriptions: Sequence[tuple[Sequence[str], Callable[[list[Item]], Awaitable[Batch]]]],
        group_id: str,
    ) -> None:
        self.name = name
        self.stage = stage
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers
        self.broker = _JoinAtOnceBroker(
            bootstrap_servers,
            client_id=name,
            max_batch_size=settings.producer_max_batch_bytes,
            max_request_size=max(settings.max_message_bytes * 2, 1_048_576),
            linger_ms=1,
            acks="all",
            enable_idempotence=False,  # the embedded broker rejects InitProducerId
            logger=log,
            log_level=logging.DEBUG,  # per-batch "Received/Processed" lines only when debugging
            graceful_timeout=15.0,
        )
        self.app = FastStream(self.broker, logger=log)
        self._known_topics: set[str] = set()
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._pipelines: list[BatchPipeline] = []
        self._drained: list[Hook] = []
        # Bulk work pauses at its next chunk while an urgent-lane batch is in this process.
        self._urgent_idle = asyncio.Event()
        self._urgent_idle.set()
        self._urgent_batches = 0
        groups: dict[str, list[str]] = {}
        for topics_in, processor in subscriptions:
            if not self.serves(topics_in):
                continue
            group = group_for(group_id, topics_in)
            self._subscribe(topics_in, processor, group)
            groups.setdefault(group, []).extend(topics_in)
        self._metrics: MetricsEndpoint | None = None
        self.health = Health()
        self._heartbeat = PeriodicTask(f"{name}-heartbeat", self._beat, HEARTBEAT_S)
        gc_task = PeriodicTask(f"{name}-gc", self._collect_when_quiet, GC_QUIET_S)
        self.on_startup(gc_task.start)
        self.on_shutdown(gc_task.stop)
        self._lags = [
            ConsumerLagSampler(bootstrap_servers, group, group_topics, stage)
            for group, group_topics in groups.items()
        ]
        self._samplers = [
            PeriodicTask(f"{name}-lag-{i}", lag.sample, SAMPLE_INTERVAL_S)
            for i, lag in enumerate(self._lags)
        ]
        # Provisioning and stores come up before the broker starts consuming.
        self._producer: AIOKafkaProducer | None = None
        self.app.on_startup(self._provision)
        self.app.on_startup(self._start_producer)
        self.app.on_startup(self._start_metrics)
        self.app.on_startup(self._run_startup_hooks)
        # aiokafka's start returns once the consumer has its partitions, so after the broker
        # started every subscriber of this process has joined its group.
        self.app.after_startup(self._mark_ready)
        self.app.on_shutdown(self._mark_stopping)
        self.app.on_shutdown(self._close_pipelines)
        self.app.on_shutdown(self._run_shutdown_hooks)
        self.app.on_shutdown(self._stop_metrics)
        # After the subscribers stopped: a batch finishing during shutdown can still publish.
        self.app.after_shutdown(self._stop_producer)

    def serves(self, topics_in: Sequence[str]) -> bool:
        """Whether this process consumes `topics_in`, given its lane (`Settings.lane`)."""
        lane = self.settings.lane
        return lane == "all" or (lane == "urgent") == is_urgent_lane(topics_in)

    @property
    def runs_background_work(self) -> bool:
        """Sweepers (escalations, retraction resends) run in bulk and all-lane processes."""
        return self.settings.lane != "urgent"

    def on_startup(self, hook: Hook) -> None:
        """Run after the broker connected (open stores, start background readers)."""
        self._startup.append(hook)

    def on_shutdown(self, hook: Hook) -> None:
        self._shutdown.append(hook)

    def on_drained(self, hook: Hook, every_s: float | None = None) -> None:
        """Run `hook` once the batches in flight are settled: before partitions go to another
        process, at shutdown, and (with `every_s`) periodically (e.g. writing what a stage
        keeps in memory)."""
        self._drained.append(hook)
        if every_s is not None:
            task = PeriodicTask(f"{self.name}-drained-{len(self._drained)}", hook, every_s)
            self.on_startup(task.start)
            self.on_shutdown(task.stop)

    async def _run_drained_hooks(self) -> None:
        for hook in self._drained:
            await hook()

    def sample(self, name: str, sample: Sample) -> None:
        """Run `sample` every few seconds while /metrics is served (gauges read from stores)."""
        self._samplers.append(PeriodicTask(name, sample, SAMPLE_INTERVAL_S))

    async def _collect_when_quiet(self) -> None:
        # With the threshold above a full batch, a lightly loaded process reaches it only
        # every few minutes, and garbage cycles piled up meanwhile: the gate's RSS grew ~1 MB
        # a minute through a soak at 50 requests/s. While nothing is in flight the young
        # generations hold only what was left since the last collection, so this is cheap;
        # under load the threshold decides.
        if all(p.idle for p in self._pipelines):
            gc.collect(1)

    async def _beat(self) -> None:
        self.health.beat()

    async def _mark_ready(self) -> None:
        self.health.mark_ready()
        log.info(
            "service ready",
            extra={
                "service": self.name,
                "started_in_s": self.health.readiness()["started_in_s"],
                "event_loop": self.health.event_loop,
            },
        )

    async def _mark_stopping(self) -> None:
        self.health.mark_stopping()

    async def _start_metrics(self) -> None:
        self.health.event_loop = running_loop_name()  # /healthz names it from the start
        self._metrics = setup_metrics(self.name, self.settings, self.health)
        if self._metrics is not None:
            await self._heartbeat.start()
            for sampler in self._samplers:
                await sampler.start()

    async def _stop_metrics(self) -> None:
        if self._metrics is not None:
            await self._heartbeat.stop()
            for sampler in self._samplers:
                await sampler.stop()
            for lag in self._lags:
                await lag.close()
            self._metrics.stop()

    async def _provision(self) -> None:
        from sharinghub.contracts import topics

        await ensure_topics(
            self.bootstrap_servers, topics.PIPELINE_TOPICS, partitions=self.settings.partitions
        )
        self._known_topics.update(topics.PIPELINE_TOPICS)

    async def _start_producer(self) -> None:
        # aiokafka directly: FastStream's per-message publish path (middlewares, command
        # objects) cost more CPU than the send itself, and every output of a batch comes here.
        s = self.settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.name}-out",
            acks="all",
            enable_idempotence=False,  # the embedded broker rejects InitProducerId
            linger_ms=1,
            max_batch_size=s.producer_max_batch_bytes,
            max_request_size=max(s.max_message_bytes * 2, 1_048_576),
            compression_type=None if s.compression == "none" else s.compression,
        )
        await self._producer.start()

    async def _stop_producer(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _run_startup_hooks(self) -> None:
        for hook in self._startup:
            await hook()
        settle_heap(self.settings.batch_max_records)
        log.info("service started", extra={"service": self.name})

    async def _run_shutdown_hooks(self) -> None:
        for hook in reversed(self._shutdown):
            await hook()

    def _fetch_wait_ms(self, topics_in: Sequence[str], urgent_lane: bool) -> int:
        s = self.settings
        if set(topics_in) <= CONTROL_TOPICS:
            return s.control_fetch_max_wait_ms
        return s.urgent_fetch_max_wait_ms if urgent_lane else s.fetch_max_wait_ms

    def _subscribe(
        self,
        topics_in: Sequence[str],
        processor: Callable[[list[Item]], Awaitable[Batch]],
        group_id: str,
    ) -> None:
        s = self.settings
        urgent_lane = is_urgent_lane(topics_in)
        # Chunks only serve an urgent lane in the same process; a bulk-only process takes
        # whole batches (fewer transactions and acknowledgement waits per request).
        shares_process = not urgent_lane and s.lane == "all"
        pipeline = BatchPipeline(
            stage=self.stage,
            processor=processor,
            send_all=self.send_all,
            chunk=s.bulk_chunk_records if shares_process else s.batch_max_records,
            depth=s.pipeline_depth,
            on_drained=self._run_drained_hooks,
            # bulk work waits while an urgent batch is being processed in this process
            may_start=None if urgent_lane else self._urgent_idle.wait,
        )
        self._pipelines.append(pipeline)
        subscriber = self.broker.subscriber(
            *topics_in,
            batch=True,
            group_id=group_id,
            auto_offset_reset="earliest",
            max_records=s.batch_max_records,
            batch_timeout_ms=s.batch_timeout_ms,
            fetch_max_wait_ms=self._fetch_wait_ms(topics_in, urgent_lane),
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(s.session_timeout_ms // 3, 300),
            # the pipeline commits each batch itself, once its messages are acknowledged
            ack_policy=AckPolicy.MANUAL,
            listener=pipeline.listener,
            decoder=decode_poll,
        )
        _without_idle_sleep(subscriber)

        # `Any`: with a type, FastStream's dependency injection validates the body against it
        async def on_batch(polled: Any) -> None:
            if urgent_lane:
                self._urgent_batches += 1
                self._urgent_idle.clear()
            try:
                await pipeline.submit(polled.records, polled.consumer)
            finally:
                if urgent_lane:
                    self._urgent_batches -= 1
                    if not self._urgent_batches:
                        self._urgent_idle.set()

        subscriber(on_batch)

    async def _close_pipelines(self) -> None:
        # Before the subscribers stop: what is in flight is committed, nothing new starts.
        await asyncio.gather(*(p.close() for p in self._pipelines))
        try:
            await self._run_drained_hooks()
        except Exception:  # the shutdown goes on (leave the group, stop the producer)
            log.exception("drained hook failed at shutdown", extra={"service": self.name})

    async def ensure_topic(self, topic: str) -> None:
        """Create a topic (an agency inbox) the first time this process writes to it."""
        if topic not in self._known_topics:
            await ensure_topics(
                self.bootstrap_servers, [topic], partitions=self.settings.partitions
            )
            self._known_topics.add(topic)

    async def publish_all(self, outputs: Sequence[Output]) -> None:
        """Send every output, then wait for all acknowledgements together (one round trip)."""
        await (await self.send_all(outputs))

    async def send_all(self, outputs: Sequence[Output]) -> Awaitable[object]:
        """Hand every output to the producer; the result completes once all are acknowledged
        (and fails if any is refused)."""
        for topic in {o.topic for o in outputs} - self._known_topics:
            await self.ensure_topic(topic)
        producer = self._producer
        if producer is None:
            raise RuntimeError(f"{self.name} is not started: its producer is not running")
        futures = [
            await producer.send(
                o.topic,
                o.value,
                key=o.key,
                headers=[(k, v.encode()) for k, v in o.headers.items()],
            )
            for o in outputs
        ]
        return asyncio.gather(*futures)

    async def publish_one(self, topic: str, value: bytes, key: bytes | None) -> None:
        await self.publish_all([Output(topic=topic, value=value, key=key)])
