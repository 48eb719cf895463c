"""Prometheus metrics for the stage services (OpenTelemetry metrics SDK + a /metrics endpoint).

Every label value is a vocabulary id or a fixed code: stage, outcome, purpose, topic, DLQ
reason code, review kind/status, error type. Never a field value, a name, a stated reason, a
subject id or a request id (those are confidential or unbounded; invariant 6). `_label`
enforces it: a value that is not a plain lower-case code becomes "other".

Instruments are created on the global OpenTelemetry meter provider, which is a no-op until
`setup_metrics` installs a real one — so with `SHARINGHUB_METRICS_PORT` unset the harness
calls below cost next to nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from sharinghub.contracts import Outcome, Purpose, Stage, topics

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.metrics import MeterProvider
    from sqlalchemy.engine import Engine

    from sharinghub.runtime.health import Health
    from sharinghub.runtime.settings import Settings
    from sharinghub.runtime.stage import Item, Output

log = logging.getLogger(__name__)

METER_NAME = "sharinghub"
SAMPLE_INTERVAL_S = 5.0
_CODE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_OUTCOMES = frozenset(o.value for o in Outcome)
_PURPOSES = frozenset(p.value for p in Purpose)
_STAGES = frozenset(s.value for s in Stage)

# Seconds. Stage work is milliseconds; end to end spans queues and, for reviewed requests,
# a person's decision (hours to days), hence the long tail of the second list.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
E2E_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    *(300.0, 3600.0, 4 * 3600.0, 24 * 3600.0, 72 * 3600.0, 7 * 24 * 3600.0),
)
MESSAGE_BUCKETS = (
    *(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005),
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


def _label(value: object, allowed: frozenset[str] | None = None, default: str = "other") -> str:
    """A safe label value: a known vocabulary id / fixed code, else `default`."""
    if allowed is not None:
        return value if isinstance(value, str) and value in allowed else default
    return value if isinstance(value, str) and _CODE.match(value) else default


def _topic_label(topic: str) -> str:
    # Agency inboxes are one topic per agency: collapse them so the label set stays bounded.
    if topic in topics.PIPELINE_TOPICS:
        return topic
    return "agency_inbox" if topic.startswith("agency.") else "other"


@dataclass
class _Gauges:
    """Latest sampled values, read by the observable-gauge callbacks at scrape time."""

    lag: dict[tuple[str, str], int] = field(default_factory=dict)
    # (kind, status) → (count, oldest opened_at as a POSIX timestamp or None)
    reviews: dict[tuple[str, str], tuple[int, float | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class HubMetrics:
    """The hub's instruments and the harness hooks that record them."""

    def __init__(self, meter: Meter) -> None:
        self.gauges = _Gauges()
        self.requests = meter.create_counter(
            "sharinghub.requests",
            unit="{request}",
            description="Outcome events published, by outcome, purpose and deciding stage.",
        )
        self.dlq = meter.create_counter(
            "sharinghub.dlq.messages",
            unit="{message}",
            description="Messages written to the dead-letter queue, by stage and reason code.",
        )
        self.messages = meter.create_counter(
            "sharinghub.stage.messages",
            unit="{message}",
            description="Records a stage processed (batch committed), by stage and topic.",
        )
        self.batch_failures = meter.create_counter(
            "sharinghub.stage.batch.failures",
            unit="{batch}",
            description="Batches that failed and will be redelivered, by exception type.",
        )
        self.batch_duration = meter.create_histogram(
            "sharinghub.stage.batch.duration",
            unit="s",
            description="Wall time of one batch: process, publish, acknowledgements.",
        )
        self.batch_size = meter.create_histogram(
            "sharinghub.stage.batch.size",
            unit="{message}",
            description="Records per batch.",
        )
        self.message_duration = meter.create_histogram(
            "sharinghub.stage.message.duration",
            unit="s",
            description="Processing time per message: batch wall time / records in the batch "
            "(one observation per batch). A message's own latency in the stage is the batch's.",
        )
        self.batch_queued = meter.create_histogram(
            "sharinghub.stage.batch.queued",
            unit="s",
            description="Wait of the oldest record of a batch: from its broker timestamp to "
            "the start of the batch (queueing before the stage).",
        )
        self.e2e = meter.create_histogram(
            "sharinghub.request.e2e.duration",
            unit="s",
            description="From the hub's acceptance of a request (envelope received_at) to "
            "its outcome event.",
        )
        meter.create_observable_gauge(
            "sharinghub.consumer.lag",
            callbacks=[self._observe_lag],
            unit="{message}",
            description="End offset minus the group's committed offset, per stage and topic.",
        )
        meter.create_observable_gauge(
            "sharinghub.review.queue.depth",
            callbacks=[self._observe_review_depth],
            unit="{case}",
            description="Review cases waiting, by kind and status (policy service).",
        )
        meter.create_observable_gauge(
            "sharinghub.review.oldest.age",
            callbacks=[self._observe_review_age],
            unit="s",
            description="Age of the oldest waiting review case, by kind and status.",
        )

    # --- harness hooks -------------------------------------------------------------------

    def batch_done(
        self,
        stage: Stage,
        items: Sequence[Item],
        outputs: Sequence[Output],
        started_at: float,
        duration_s: float,
    ) -> None:
        """Record a committed batch: timings, messages, outcomes and DLQ entries it produced.

        `started_at` is wall-clock (time.time()) at the start of the batch. Called only after
        every output was acknowledged, so a redelivered batch is not counted twice. An SDK
        measurement costs ~7 µs, so counts are summed per label set first and only the
        end-to-end latency (once per outcome event) is recorded per message.
        """
        st = stage.value
        attrs = {"stage": st}
        n = len(items)
        self.batch_duration.record(duration_s, attrs)
        self.batch_size.record(n, attrs)
        if n:
            self.message_duration.record(duration_s / n, attrs)
        oldest_ms = min((it.record.timestamp for it in items if it.record.timestamp > 0), default=0)
        if oldest_ms:
            self.batch_queued.record(max(0.0, started_at - oldest_ms / 1000.0), attrs)
        per_topic: dict[str, int] = {}
        for it in items:
            per_topic[it.record.topic] = per_topic.get(it.record.topic, 0) + 1
        for topic, count in per_topic.items():
            self.messages.add(count, {"stage": st, "topic": _topic_label(topic)})
        now = started_at + duration_s
        requests: dict[tuple[str, str, str], int] = {}
        dead: dict[str, int] = {}
        for out in outputs:
            if out.topic == topics.OUTCOMES:
                key = self._outcome(out, now)
                if key is not None:
                    requests[key] = requests.get(key, 0) + 1
            elif out.topic == topics.DLQ:
                code = _dead_letter_code(out)
                dead[code] = dead.get(code, 0) + 1
        for (outcome, purpose, by), count in requests.items():
            self.requests.add(count, {"outcome": outcome, "purpose": purpose, "stage": by})
        for code, count in dead.items():
            self.dlq.add(count, {"stage": st, "reason_code": code})

    def batch_failed(self, stage: Stage, error: BaseException) -> None:
        """A batch that raised (it will be redelivered); labelled by exception class only."""
        self.batch_failures.add(
            1, {"stage": stage.value, "error_type": _error_type(type(error).__name__)}
        )

    def _outcome(self, out: Output, now: float) -> tuple[str, str, str] | None:
        """(outcome, purpose, stage) labels of an outcome event; records its e2e latency."""
        try:
            event = orjson.loads(out.value)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(event, dict):
            return None
        outcome = _label(event.get("outcome"), _OUTCOMES)
        started = _received_at(out)
        if started is not None:
            self.e2e.record(max(0.0, now - started), {"outcome": outcome})
        return (
            outcome,
            _label(event.get("purpose"), _PURPOSES, default="unknown"),
            _label(event.get("stage"), _STAGES),
        )

    # --- sampled gauges ------------------------------------------------------------------

    def set_lag(self, stage: Stage, lag_by_topic: dict[str, int]) -> None:
        """Replace the lag values of one stage (called by the lag sampler)."""
        with self.gauges.lock:
            for key in [k for k in self.gauges.lag if k[0] == stage.value]:
                del self.gauges.lag[key]
            for topic, lag in lag_by_topic.items():
                self.gauges.lag[(stage.value, _topic_label(topic))] = max(0, lag)

    def set_review_queue(self, rows: Iterable[tuple[str, str, int, datetime | None]]) -> None:
        """Replace the review-queue figures: rows of (kind, status, count, oldest opened_at)."""
        values: dict[tuple[str, str], tuple[int, float | None]] = {}
        for kind, status, count, oldest in rows:
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)  # SQLite hands back naive UTC datetimes
            values[(_label(kind), _label(status))] = (
                count,
                oldest.timestamp() if oldest else None,
            )
        with self.gauges.lock:
            self.gauges.reviews = values

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        with self.gauges.lock:
            items = list(self.gauges.lag.items())
        return [Observation(v, {"stage": s, "topic": t}) for (s, t), v in items]

    def _observe_review_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        with self.gauges.lock:
            items = list(self.gauges.reviews.items())
        return [Observation(n, {"kind": k, "status": s}) for (k, s), (n, _) in items]

    def _observe_review_age(self, options: CallbackOptions) -> Iterable[Observation]:
        now = time.time()
        with self.gauges.lock:
            items = list(self.gauges.reviews.items())
        return [
            Observation(max(0.0, now - oldest), {"kind": k, "status": s})
            for (k, s), (_, oldest) in items
            if oldest is not None
        ]


def _dead_letter_code(out: Output) -> str:
    try:
        entry = orjson.loads(out.value)
    except orjson.JSONDecodeError:
        return "other"
    return _label(entry.get("reason_code")) if isinstance(entry, dict) else "other"


def _error_type(name: str) -> str:
    # Class names are code, not data, but keep the label set sane anyway.
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name) else "other"


def _received_at(out: Output) -> float | None:
    """When the hub accepted the request behind an output, as a POSIX timestamp.

    The envelope's `received_at` when the stage noted it on the item; for a request rejected
    before it became an envelope, the broker timestamp of the request record.
    """
    item = out.item
    if item is None:
        return None
    if item.received_at is not None:
        return item.received_at.timestamp()
    ts = item.record.timestamp
    if item.record.topic in (topics.REQUESTS, topics.REQUESTS_URGENT) and ts and ts > 0:
        return float(ts) / 1000.0
    return None


_metrics: HubMetrics | None = None


def hub_metrics() -> HubMetrics:
    """The process-wide instruments (on the global meter provider; no-op until set up)."""
    global _metrics
    if _metrics is None:
        _metrics = HubMetrics(metrics.get_meter(METER_NAME))
    return _metrics


# --- endpoint ----------------------------------------------------------------------------


@dataclass
class MetricsEndpoint:
    """A running /metrics endpoint and the meter provider behind it."""

    provider: MeterProvider
    server: WSGIServer
    port: int

    def stop(self) -> None:
        """Stop serving and flush the provider."""
        self.server.shutdown()
        self.server.server_close()
        self.provider.shutdown()


def _views() -> list[Any]:
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    def hist(name: str, bounds: Sequence[float]) -> View:
        return View(
            instrument_name=name,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=list(bounds)),
        )

    return [
        hist("sharinghub.stage.batch.duration", STAGE_BUCKETS),
        hist("sharinghub.stage.message.duration", MESSAGE_BUCKETS),
        hist("sharinghub.stage.batch.queued", E2E_BUCKETS),
        hist("sharinghub.request.e2e.duration", E2E_BUCKETS),
        hist("sharinghub.stage.batch.size", BATCH_SIZE_BUCKETS),
    ]


def setup_metrics(
    service_name: str, settings: Settings, health: Health | None = None
) -> MetricsEndpoint | None:
    """Install a meter provider and serve /metrics (and, given `health`, /ready and /healthz)
    when `metrics_port` is set, else None."""
    if settings.metrics_port is None:
        return None
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import make_wsgi_app

    from sharinghub.runtime.health import serve, with_health_routes

    reader = PrometheusMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": service_name}),
        metric_readers=[reader],
        views=_views(),
        # Exemplars are not in the Prometheus text format; skipping them saves ~30% per call.
        exemplar_filter=AlwaysOffExemplarFilter(),
    )
    metrics.set_meter_provider(provider)
    app = make_wsgi_app()
    if health is not None:
        app = with_health_routes(app, health)
    server = serve(settings.metrics_host, settings.metrics_port, app)
    log.info(
        "metrics endpoint up",
        extra={"metrics_host": settings.metrics_host, "metrics_port": settings.metrics_port},
    )
    return MetricsEndpoint(provider=provider, server=server, port=settings.metrics_port)


# --- samplers ----------------------------------------------------------------------------

Sample = Callable[[], Awaitable[None]]


class ConsumerLagSampler:
    """Lag of one consumer group: per topic, sum over partitions of end offset − committed.

    Uses its own consumer with the group id that never subscribes (so it never joins the group
    or moves its offsets): `committed()` is an OffsetFetch, `end_offsets()` a ListOffsets.
    Every process of a stage reports the whole group's lag; aggregate with max, not sum.
    """

    def __init__(
        self, bootstrap_servers: str, group_id: str, topic_names: Sequence[str], stage: Stage
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._group = group_id
        self._topics = list(topic_names)
        self._stage = stage
        self._consumer: Any = None

    async def sample(self) -> None:
        """Measure once and publish the values to the gauges."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                group_id=self._group,
                enable_auto_commit=False,
                client_id=f"{self._group}-lag",
            )
            await consumer.start()
            self._consumer = consumer
        c = self._consumer
        lag: dict[str, int] = {}
        for topic in self._topics:
            parts = c.partitions_for_topic(topic)
            if not parts:
                await c._client.force_metadata_update()
                parts = c.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            if not tps:
                continue
            ends = await c.end_offsets(tps)
            starts = await c.beginning_offsets(tps)
            total = 0
            for tp in tps:
                committed = await c.committed(tp)
                # Nothing committed yet: the group starts from the earliest offset.
                base = committed if committed is not None and committed >= 0 else starts[tp]
                total += max(0, ends[tp] - base)
            lag[topic] = total
        hub_metrics().set_lag(self._stage, lag)

    async def close(self) -> None:
        """Stop the side consumer."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def review_queue_sampler(engine: Engine) -> Sample:
    """A sample function for the policy service: review-queue depth and oldest waiting case.

    One aggregate query (no case is loaded), run in a worker thread.
    """
    from sqlalchemy import func, select

    from sharinghub.policy.reviews import ReviewCaseRow

    query = (
        select(
            ReviewCaseRow.kind,
            ReviewCaseRow.status,
            func.count(),
            func.min(ReviewCaseRow.opened_at),
        )
        .where(ReviewCaseRow.status != "decided")
        .group_by(ReviewCaseRow.kind, ReviewCaseRow.status)
    )

    def read() -> list[tuple[str, str, int, datetime | None]]:
        with engine.connect() as conn:
            return [(str(k), str(s), int(n), o) for k, s, n, o in conn.execute(query)]

    async def sample() -> None:
        hub_metrics().set_review_queue(await asyncio.to_thread(read))

    return sample
